package loopauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestErrorMessages checks that errors say what went wrong and what to do,
// and match what callers test for (ports the Rust error display tests).
func TestErrorMessages(t *testing.T) {
	cases := []struct {
		err      error
		is       []error
		contains []string
	}{
		{timeoutError{after: 5 * time.Minute}, []error{ErrTimeout, context.DeadlineExceeded}, []string{"5m0s", "run the command again"}},
		{timeoutError{}, []error{ErrTimeout}, []string{"deadline"}},
		{newProviderError("access_denied", "User denied", "", 0), nil, []string{"refused the authorization request", "access_denied", "User denied", "sign in again"}},
		{newProviderError("invalid_grant", "", "", 400), nil, []string{"HTTP 400", "invalid_grant", "sign in again"}},
		{newProviderError("invalid_client", "", "", 401), nil, []string{"HTTP 401", "client ID and client secret"}},
		{newProviderError("", "", "", 307), nil, []string{"HTTP 307", "redirects from the token endpoint are not followed"}},
		{ErrNoRefreshToken, nil, []string{"no refresh token available"}},
		{ErrStateMismatch, nil, []string{"state mismatch"}},
	}
	for _, tc := range cases {
		msg := tc.err.Error()
		if !strings.HasPrefix(msg, "loopauth: ") {
			t.Errorf("%q lacks the package prefix", msg)
		}
		for _, want := range tc.contains {
			if !strings.Contains(msg, want) {
				t.Errorf("%q lacks %q", msg, want)
			}
		}
		for _, target := range tc.is {
			if !errors.Is(tc.err, target) {
				t.Errorf("%q does not match %v", msg, target)
			}
		}
	}
}

// TestProviderErrorSanitized covers C-15 and C-16: provider text is made
// safe and error_uri kept only when it is a plain https URL.
func TestProviderErrorSanitized(t *testing.T) {
	e := newProviderError("access_denied", "a\x1b[2J\r\nb\u202e"+strings.Repeat("x", 5000), "javascript:alert(1)", 0)
	if strings.ContainsAny(e.ErrorDescription, "\x1b\r\n\u202e") || len(e.ErrorDescription) > maxErrorDescription+len("…") {
		t.Errorf("description = %q", e.ErrorDescription)
	}
	if e.ErrorURI != "" {
		t.Errorf("javascript: error_uri kept: %q", e.ErrorURI)
	}
	for _, uri := range []string{"data:text/html,x", "http://evil.example/", "https://a.example/\x00"} {
		if got := newProviderError("x", "", uri, 0).ErrorURI; got != "" {
			t.Errorf("error_uri %q kept", uri)
		}
	}
	if got := newProviderError("x", "", "https://as.example/errors", 0).ErrorURI; got != "https://as.example/errors" {
		t.Errorf("https error_uri dropped: %q", got)
	}
	for _, code := range []string{`a"b`, `a\b`, "a\nb", strings.Repeat("e", 65), "é"} {
		if got := newProviderError(code, "", "", 0).ErrorCode; got != "invalid_error_code" {
			t.Errorf("error code %q kept as %q", code, got)
		}
	}
}

// TestScopes ports the Rust scope tests: wire strings, order, and JSON.
func TestScopes(t *testing.T) {
	if ScopeOpenID != "openid" || ScopeEmail != "email" || ScopeProfile != "profile" || ScopeOfflineAccess != "offline_access" {
		t.Error("well-known scope strings changed")
	}
	got, err := normalizeScopes([]Scope{"read:user", ScopeOfflineAccess, "admin", ScopeEmail, ScopeProfile, "admin"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := joinScopes(got); s != "email profile offline_access admin read:user" {
		t.Errorf("order = %q", s)
	}
}

// TestErrorPrefixOnce: composed errors name the package once and still
// match every sentinel they wrap.
func TestErrorPrefixOnce(t *testing.T) {
	errs := []error{
		invalidIDToken(ErrIDTokenExpired, "expired"),
		errorf("%w: %w", ErrInvalidIDToken, errorf("%w: no key has kid %q", ErrNoUsableKey, "k")),
		errorf("%w: %w: x", ErrInvalidJWKS, ErrNoUsableKey),
	}
	for _, err := range errs {
		if n := strings.Count(err.Error(), "loopauth: "); n != 1 {
			t.Errorf("%q names the package %d times", err, n)
		}
	}
	if !errors.Is(errs[0], ErrIDTokenExpired) || !errors.Is(errs[0], ErrInvalidIDToken) || !errors.Is(errs[1], ErrNoUsableKey) {
		t.Error("sentinels lost")
	}
}

// TestRefusedError: the final error of a flow that timed out or was
// cancelled says how many requests were refused, with thousands
// separators, and matches ErrStateMismatch only when some had a wrong or
// missing state.
func TestRefusedError(t *testing.T) {
	cases := []struct {
		total, badState int64
		mismatch        bool
		want            string
	}{
		{0, 0, false, ""},
		{1, 0, false, "loopauth: 1 request to the callback server was refused; another program or web page may have interfered with this sign-in, see the debug log"},
		{1, 1, true, "loopauth: callback state mismatch (possible cross-site request forgery): 1 request to the callback server was refused, 1 with a wrong or missing state; another program or web page may have interfered with this sign-in, see the debug log"},
		{1204, 1200, true, "1,204 requests to the callback server were refused, 1,200 with a wrong or missing state;"},
		{1234567, 0, false, "loopauth: 1,234,567 requests to the callback server were refused;"},
	}
	for _, tc := range cases {
		s := &callbackServer{}
		s.refused.Store(tc.total)
		s.badState.Store(tc.badState)
		err := refusedError(s)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%d refused: err = %v, want nil", tc.total, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d refused: err = %v, want %q", tc.total, err, tc.want)
			continue
		}
		if errors.Is(err, ErrStateMismatch) != tc.mismatch {
			t.Errorf("%d refused, %d with a bad state: matches ErrStateMismatch = %v", tc.total, tc.badState, !tc.mismatch)
		}
	}
	if refusedError(nil) != nil {
		t.Error("no server, yet an error")
	}
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 123456: "123,456", 1234567: "1,234,567"} {
		if got := groupThousands(n); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", n, got, want)
		}
	}
	// Through flowContextError, joined to the timeout or the cancellation.
	s := &callbackServer{}
	s.refused.Store(1204)
	s.badState.Store(3)
	for _, err := range []error{flowContextError(nil, s, time.Minute), flowContextError(context.Canceled, s, time.Minute)} {
		if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "1,204 requests") {
			t.Errorf("err = %v", err)
		}
	}
}

// asProvider is an error whose As method hands out a *ProviderError.
type asProvider struct{ pe *ProviderError }

func (a asProvider) Error() string { return "as" }

func (a asProvider) As(target any) bool {
	if p, ok := target.(**ProviderError); ok {
		*p = a.pe
		return true
	}
	return false
}

// TestErrorAs: errorAs finds what errors.As finds, in the same order,
// through Unwrap() error, Unwrap() []error and As methods.
func TestErrorAs(t *testing.T) {
	first, second := newProviderError("first", "", "", 400), newProviderError("second", "", "", 400)
	other := errors.New("other")
	cases := map[string]error{
		"nil":           nil,
		"plain":         other,
		"itself":        first,
		"wrapped":       errorf("loopauth: step: %w", first),
		"deep":          fmt.Errorf("a: %w", fmt.Errorf("b: %w", first)),
		"joined":        errors.Join(other, first, second),
		"joined nested": errors.Join(other, fmt.Errorf("x: %w", errors.Join(other, second)), first),
		"multi %w":      fmt.Errorf("%w, %w", second, first),
		"As method":     fmt.Errorf("x: %w", asProvider{second}),
		"As before":     errors.Join(asProvider{first}, second),
		"no match":      errors.Join(other, fmt.Errorf("x: %w", other)),
	}
	for name, err := range cases {
		var want *ProviderError
		wantOK := errors.As(err, &want)
		got, ok := errorAs[*ProviderError](err)
		if ok != wantOK || got != want {
			t.Errorf("%s: errorAs = %v, %v; errors.As = %v, %v", name, got, ok, want, wantOK)
		}
	}
	if _, ok := errorAs[*FileModeError](errorf("x: %w", first)); ok {
		t.Error("errorAs found a *FileModeError in a chain without one")
	}
}
