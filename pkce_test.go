package loopauth

import (
	"regexp"
	"testing"
)

// TestS256Vector reproduces RFC 7636 Appendix B.
func TestS256Vector(t *testing.T) {
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const want = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if got := s256Challenge(verifier); got != want {
		t.Errorf("s256Challenge = %q, want %q", got, want)
	}
}

// TestFlowSecrets covers rows: verifiers are 43-128
// unreserved characters, fresh and unique, and flows never share a state.
func TestFlowSecrets(t *testing.T) {
	unreserved := regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		s := newFlowSecrets(true)
		for _, v := range []string{s.verifier, s.state, s.nonce} {
			if !unreserved.MatchString(v) {
				t.Fatalf("%q is not 43-128 unreserved characters", v)
			}
			if seen[v] {
				t.Fatalf("value repeated after %d flows", i)
			}
			seen[v] = true
		}
		if ch := s256Challenge(s.verifier); len(ch) != 43 || !unreserved.MatchString(ch) {
			t.Fatalf("challenge %q malformed", ch)
		}
	}
}

// TestEqualSecret covers C-07 and C-08.
func TestEqualSecret(t *testing.T) {
	cases := []struct {
		got, want string
		eq        bool
	}{
		{"abc", "abc", true},
		{"abd", "abc", false},
		{"ABC", "abc", false},
		{"ab", "abc", false},
		{"abcd", "abc", false},
		{"", "", false}, // C-08: an empty expected value never matches
		{"x", "", false},
	}
	for _, tc := range cases {
		if got := equalSecret(tc.got, tc.want); got != tc.eq {
			t.Errorf("equalSecret(%q, %q) = %v", tc.got, tc.want, got)
		}
	}
}
