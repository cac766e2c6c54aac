package loopauth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopauth/loopauth"
)

// The vectors in testdata/jose are copied from RFC 7515 and RFC 7520 (see
// testdata/jose/README.md). Each valid one was checked against the standard
// library's crypto before it was committed, so a failure here is the
// verifier's, not the vector's.

// joseVector is one file of testdata/jose.
type joseVector struct {
	Source        string          `json:"source"`
	JWKS          json.RawMessage `json:"jwks"`
	JWS           string          `json:"jws"`
	Payload       *string         `json:"payload"`
	PayloadB64URL string          `json:"payload_b64url"`
	Valid         bool            `json:"valid"`
	ExpectError   []string        `json:"expect_error"`
}

// The files every run must find: a missing or renamed file fails the test
// instead of silently shrinking it.
var (
	validJOSEVectors = []string{
		"rfc7515-a2-rs256.json",
		"rfc7515-a3-es256.json",
		"rfc7520-4.1-rs256.json",
		"rfc7520-4.2-ps384.json",
		"rfc7520-4.3-es512.json",
	}
	rejectedJOSEVectors = []string{
		"rfc7515-a1-hs256.json",
		"rfc7515-a5-none.json",
		"rfc7515-e-crit.json",
		"rfc7520-4.4-hs256.json",
	}
)

var joseSentinels = map[string]error{
	"ErrMalformedJWT":     loopauth.ErrMalformedJWT,
	"ErrAlgNotAllowed":    loopauth.ErrAlgNotAllowed,
	"ErrNoUsableKey":      loopauth.ErrNoUsableKey,
	"ErrInvalidSignature": loopauth.ErrInvalidSignature,
	"ErrInvalidJWKS":      loopauth.ErrInvalidJWKS,
}

var joseB64 = base64.RawURLEncoding.Strict()

func loadJOSEVector(t *testing.T, name string) joseVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "jose", name))
	if err != nil {
		t.Fatal(err)
	}
	var v joseVector
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if v.Source == "" || len(v.JWKS) == 0 || v.JWS == "" {
		t.Fatalf("%s: source, jwks and jws are required", name)
	}
	return v
}

// expectedPayload returns the payload bytes a valid vector must verify to,
// after checking that the file's two spellings of it agree.
func (v joseVector) expectedPayload(t *testing.T) []byte {
	t.Helper()
	if v.Payload == nil || v.PayloadB64URL == "" {
		t.Fatal("a valid vector needs payload and payload_b64url")
	}
	fromB64, err := joseB64.DecodeString(v.PayloadB64URL)
	if err != nil {
		t.Fatalf("payload_b64url: %v", err)
	}
	if !bytes.Equal(fromB64, []byte(*v.Payload)) {
		t.Fatalf("payload and payload_b64url disagree: %q vs %q", *v.Payload, fromB64)
	}
	return fromB64
}

func joseParseSet(t *testing.T, jwks []byte) *loopauth.JSONWebKeySet {
	t.Helper()
	set, err := loopauth.ParseJSONWebKeySet(jwks)
	if err != nil {
		t.Fatalf("ParseJSONWebKeySet: %v", err)
	}
	if set == nil {
		t.Fatal("ParseJSONWebKeySet returned a nil set and no error")
	}
	return set
}

// joseEditKey rewrites the first key of a JWKS document.
func joseEditKey(t *testing.T, jwks []byte, edit func(key map[string]any)) []byte {
	t.Helper()
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil || len(doc.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	edit(doc.Keys[0])
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func joseIsAnyOf(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// joseRejectReason returns why a Verify result is not the expected refusal, or
// "" when it is one: an error, no payload with it, and, when allowed is not
// empty, an error matching one of allowed.
func joseRejectReason(payload []byte, err error, allowed []error) string {
	switch {
	case err == nil:
		return fmt.Sprintf("verified (payload %q)", payload)
	case payload != nil:
		return fmt.Sprintf("returned a payload together with the error %v", err)
	case len(allowed) > 0 && !joseIsAnyOf(err, allowed):
		return fmt.Sprintf("error %v matches none of %v", err, allowed)
	}
	return ""
}

func joseMustReject(t *testing.T, label string, set *loopauth.JSONWebKeySet, token string, allowed ...error) {
	t.Helper()
	payload, err := set.Verify(token)
	if reason := joseRejectReason(payload, err, allowed); reason != "" {
		t.Errorf("%s: %s", label, reason)
	}
}

func joseMustVerify(t *testing.T, label string, set *loopauth.JSONWebKeySet, token string, want []byte) {
	t.Helper()
	payload, err := set.Verify(token)
	if err != nil {
		t.Errorf("%s: %v", label, err)
		return
	}
	if !bytes.Equal(payload, want) {
		t.Errorf("%s: payload %q, want %q", label, payload, want)
	}
}

func joseSplit(t *testing.T, token string) [3]string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("vector is not a three-segment compact JWS: %q", token)
	}
	return [3]string{parts[0], parts[1], parts[2]}
}

func joseJoin(segs [3]string) string { return segs[0] + "." + segs[1] + "." + segs[2] }

// TestJOSEVectorsValid verifies each RFC example and checks the payload
// bytes, CRLF and U+2019 included.
func TestJOSEVectorsValid(t *testing.T) {
	for _, name := range validJOSEVectors {
		t.Run(name, func(t *testing.T) {
			v := loadJOSEVector(t, name)
			if !v.Valid || len(v.ExpectError) != 0 {
				t.Fatal("file is not marked valid")
			}
			want := v.expectedPayload(t)
			if segs := joseSplit(t, v.JWS); segs[1] != v.PayloadB64URL {
				t.Fatal("payload_b64url is not the JWS payload segment")
			}
			set := joseParseSet(t, v.JWKS)
			joseMustVerify(t, "Verify", set, v.JWS, want)
			// The set is reusable and the result stable.
			joseMustVerify(t, "second Verify", set, v.JWS, want)
		})
	}
}

// joseAllBits makes TestJOSEVectorsBitFlips flip every bit of every
// segment of every vector, P-521 included:
//
//	go test -run JOSEVectorsBitFlips . -args -jose.allbits
var joseAllBits = flag.Bool("jose.allbits", false, "flip every bit of the ES512 vector too (slow: a P-521 verification costs 1-2 ms, about 10 times more under -race)")

// joseSampledBitFlips names the vectors whose payload and signature are not
// flipped bit by bit by default. Each of the 2,400 bits of the ES512 vector
// costs a P-521 verification: 3 s of test time, 23 s under -race (make
// test), where the four other vectors together take well under a second.
var joseSampledBitFlips = map[string]bool{"rfc7520-4.3-es512.json": true}

// joseFlipPlan lists the bits to flip in a segment of n bytes: all of them, or,
// when sampled, every bit of the bytes for which full is true and bit i%8
// of every other byte i, so that each bit position is still covered.
func joseFlipPlan(n int, sampled bool, full func(i int) bool) []int {
	var bits []int
	for i := 0; i < n; i++ {
		if !sampled || full(i) {
			for b := 0; b < 8; b++ {
				bits = append(bits, 8*i+b)
			}
		} else {
			bits = append(bits, 8*i+i%8)
		}
	}
	return bits
}

// TestJOSEVectorsBitFlips flips every bit of every decoded segment of each
// valid vector, one at a time (see joseSampledBitFlips for the one exception):
// no flipped token may verify, and a refusal never comes with a payload.
func TestJOSEVectorsBitFlips(t *testing.T) {
	for _, name := range validJOSEVectors {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := loadJOSEVector(t, name)
			want := v.expectedPayload(t)
			set := joseParseSet(t, v.JWKS)
			joseMustVerify(t, "unmodified", set, v.JWS, want)
			segs := joseSplit(t, v.JWS)
			sampled := joseSampledBitFlips[name] && !*joseAllBits
			for i, segName := range []string{"header", "payload", "signature"} {
				orig, err := joseB64.DecodeString(segs[i])
				if err != nil || len(orig) == 0 {
					t.Fatalf("%s: %d bytes, %v", segName, len(orig), err)
				}
				n := len(orig)
				var plan []int
				switch segName {
				case "header":
					plan = joseFlipPlan(n, false, nil)
				case "payload":
					plan = joseFlipPlan(n, sampled, func(i int) bool { return i < 2 || i >= n-2 })
				case "signature":
					// Every bit of the first two and last two bytes of
					// r and of s: leading zeros, the range above the
					// curve order, the low end.
					half := n / 2
					plan = joseFlipPlan(n, sampled, func(i int) bool { return i%half < 2 || i%half >= half-2 })
				}
				mutated := make([]byte, n)
				failures := 0
				for _, bit := range plan {
					copy(mutated, orig)
					mutated[bit/8] ^= 1 << (bit % 8)
					m := segs
					m[i] = base64.RawURLEncoding.EncodeToString(mutated)
					payload, err := set.Verify(joseJoin(m))
					if reason := joseRejectReason(payload, err, nil); reason != "" {
						failures++
						if failures <= 5 {
							t.Errorf("%s bit %d (byte %d, mask %#02x): %s", segName, bit, bit/8, 1<<(bit%8), reason)
						}
					}
				}
				if failures > 5 {
					t.Errorf("%s: %d of %d flipped bits were not refused", segName, failures, len(plan))
				}
				if !sampled && len(plan) != 8*n {
					t.Errorf("%s: %d bits flipped, want all %d", segName, len(plan), 8*n)
				}
			}
		})
	}
}

// TestJOSEVectorsStructural re-encodes each valid vector in ways a lenient
// decoder accepts (padding, line breaks, the standard alphabet, an extra
// segment) and changes ECDSA signature lengths and formats.
func TestJOSEVectorsStructural(t *testing.T) {
	malformedOrBadSig := []error{loopauth.ErrMalformedJWT, loopauth.ErrInvalidSignature}
	for _, name := range validJOSEVectors {
		t.Run(name, func(t *testing.T) {
			v := loadJOSEVector(t, name)
			want := v.expectedPayload(t)
			set := joseParseSet(t, v.JWKS)
			joseMustVerify(t, "unmodified", set, v.JWS, want)
			segs := joseSplit(t, v.JWS)
			variants := 0
			with := func(i int, s string) string {
				m := segs
				m[i] = s
				return joseJoin(m)
			}

			for i, segName := range []string{"header", "payload", "signature"} {
				raw, _ := joseB64.DecodeString(segs[i])
				if padded := base64.URLEncoding.EncodeToString(raw); padded != segs[i] {
					joseMustReject(t, segName+" with = padding", set, with(i, padded), malformedOrBadSig...)
					variants++
				}
				mid := len(segs[i]) / 2
				for _, nl := range []string{"\n", "\r\n", "\r"} {
					joseMustReject(t, fmt.Sprintf("%s with %q inserted", segName, nl), set,
						with(i, segs[i][:mid]+nl+segs[i][mid:]), malformedOrBadSig...)
					variants++
				}
				if std := base64.RawStdEncoding.EncodeToString(raw); std != segs[i] {
					joseMustReject(t, segName+" in the standard base64 alphabet", set, with(i, std), malformedOrBadSig...)
					variants++
				}
			}
			if !strings.ContainsAny(segs[2], "-_") {
				t.Errorf("signature has no '-' or '_': the standard-alphabet case is not exercised")
			}

			joseMustReject(t, "fourth segment", set, v.JWS+"."+segs[2], malformedOrBadSig...)
			joseMustReject(t, "empty fourth segment", set, v.JWS+".", malformedOrBadSig...)
			joseMustReject(t, "empty signature", set, with(2, ""), malformedOrBadSig...)
			joseMustReject(t, "signature segment dropped", set, segs[0]+"."+segs[1], malformedOrBadSig...)
			variants += 4
			if variants < 10 {
				t.Errorf("only %d structural variants exercised", variants)
			}
		})
	}

	t.Run("ES256 signature forms", func(t *testing.T) {
		v := loadJOSEVector(t, "rfc7515-a3-es256.json")
		want := v.expectedPayload(t)
		set := joseParseSet(t, v.JWKS)
		joseMustVerify(t, "unmodified", set, v.JWS, want)
		segs := joseSplit(t, v.JWS)
		sig, err := joseB64.DecodeString(segs[2])
		if err != nil || len(sig) != 64 {
			t.Fatalf("ES256 signature: %d bytes, %v", len(sig), err)
		}
		with := func(s []byte) string {
			m := segs
			m[2] = base64.RawURLEncoding.EncodeToString(s)
			return joseJoin(m)
		}
		// The same (r, s) as an ASN.1 DER ECDSA-Sig-Value (RFC 3279),
		// which JWS does not use (RFC 7518 §3.4).
		der, err := asn1.Marshal(joseECDSASig{
			R: new(big.Int).SetBytes(sig[:32]),
			S: new(big.Int).SetBytes(sig[32:]),
		})
		if err != nil {
			t.Fatal(err)
		}
		joseMustReject(t, "DER signature", set, with(der), loopauth.ErrInvalidSignature, loopauth.ErrMalformedJWT)
		joseMustReject(t, "signature truncated to 63 bytes", set, with(sig[:63]), malformedOrBadSig...)
		joseMustReject(t, "signature extended to 65 bytes (00 appended)", set, with(append(sig[:64:64], 0)), malformedOrBadSig...)
		joseMustReject(t, "signature extended to 65 bytes (00 prepended)", set, with(append([]byte{0}, sig...)), malformedOrBadSig...)
		joseMustReject(t, "r and s swapped", set, with(append(append([]byte{}, sig[32:]...), sig[:32]...)), malformedOrBadSig...)
	})

	// The RFC 7520 ES512 signature's r starts with a zero byte: the
	// 131-byte form without it is what signers that drop leading zeros
	// produce, and what a verifier that pads short signatures would accept.
	t.Run("ES512 signature forms", func(t *testing.T) {
		v := loadJOSEVector(t, "rfc7520-4.3-es512.json")
		want := v.expectedPayload(t)
		set := joseParseSet(t, v.JWKS)
		joseMustVerify(t, "unmodified", set, v.JWS, want)
		segs := joseSplit(t, v.JWS)
		sig, err := joseB64.DecodeString(segs[2])
		if err != nil || len(sig) != 132 || sig[0] != 0 {
			t.Fatalf("ES512 signature: %d bytes starting %x, %v", len(sig), sig[:1], err)
		}
		with := func(s []byte) string {
			m := segs
			m[2] = base64.RawURLEncoding.EncodeToString(s)
			return joseJoin(m)
		}
		joseMustReject(t, "leading zero of r dropped (131 bytes)", set, with(sig[1:]), malformedOrBadSig...)
		der, err := asn1.Marshal(joseECDSASig{
			R: new(big.Int).SetBytes(sig[:66]),
			S: new(big.Int).SetBytes(sig[66:]),
		})
		if err != nil {
			t.Fatal(err)
		}
		joseMustReject(t, "DER signature", set, with(der), loopauth.ErrInvalidSignature, loopauth.ErrMalformedJWT)
		joseMustReject(t, "signature extended to 133 bytes (00 prepended)", set, with(append([]byte{0}, sig...)), malformedOrBadSig...)
	})
}

// joseECDSASig is the ASN.1 ECDSA-Sig-Value, the DER form crypto/ecdsa
// produces with SignASN1.
type joseECDSASig struct {
	R, S *big.Int
}

// TestJOSEVectorsRejected checks the RFC examples that must never verify:
// HS256 (A.1, RFC 7520 §4.4), the unsecured JWS (A.5) and the crit
// negative test case (Appendix E).
func TestJOSEVectorsRejected(t *testing.T) {
	for _, name := range rejectedJOSEVectors {
		t.Run(name, func(t *testing.T) {
			v := loadJOSEVector(t, name)
			if v.Valid || len(v.ExpectError) == 0 {
				t.Fatal("file is not marked invalid with expect_error")
			}
			var allowed []error
			for _, e := range v.ExpectError {
				sentinel, ok := joseSentinels[e]
				if !ok {
					t.Fatalf("unknown expect_error %q", e)
				}
				allowed = append(allowed, sentinel)
			}
			set := joseParseSet(t, v.JWKS)
			joseMustReject(t, "Verify", set, v.JWS, allowed...)
		})
	}

	// A.5 with a non-empty signature segment: the refusal must then come
	// from alg "none" itself, not from the empty segment.
	t.Run("rfc7515-a5-none with a signature", func(t *testing.T) {
		v := loadJOSEVector(t, "rfc7515-a5-none.json")
		set := joseParseSet(t, v.JWKS)
		segs := joseSplit(t, v.JWS)
		segs[2] = base64.RawURLEncoding.EncodeToString([]byte("FAIL"))
		joseMustReject(t, "Verify", set, joseJoin(segs), loopauth.ErrAlgNotAllowed)
	})
}

// TestJOSEVectorsHeaderFeatures signs tokens with a fresh P-256 key so that
// the header is the only thing wrong with them: each unsupported feature
// must be refused although the signature is valid.
func TestJOSEVectorsHeaderFeatures(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	point := pub.Bytes() // 0x04 || X || Y
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC",
		"crv": "P-256",
		"kid": "k1",
		"x":   base64.RawURLEncoding.EncodeToString(point[1:33]),
		"y":   base64.RawURLEncoding.EncodeToString(point[33:]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	set := joseParseSet(t, jwks)
	payload := []byte(`{"iss":"https://issuer.example","sub":"s"}`)
	sign := func(header string) string {
		input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
		digest := sha256.Sum256([]byte(input))
		der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		var rs joseECDSASig
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
			t.Fatalf("signature DER: %v", err)
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}

	for _, header := range []string{
		`{"alg":"ES256","kid":"k1"}`,
		`{"alg":"ES256"}`,
		`{"alg":"ES256","kid":"k1","typ":"JWT"}`,
		`{"alg":"ES256","kid":"k1","typ":"jwt"}`,
	} {
		joseMustVerify(t, header, set, sign(header), payload)
	}
	for _, header := range []string{
		// RFC 7515 §4.1.11's example, and Appendix E's extension.
		`{"alg":"ES256","kid":"k1","crit":["exp"],"exp":1363284000}`,
		`{"alg":"ES256","kid":"k1","crit":["http://example.com/UNDEFINED"],"http://example.com/UNDEFINED":true}`,
		// RFC 7797 unencoded payload.
		`{"alg":"ES256","kid":"k1","b64":false,"crit":["b64"]}`,
		`{"alg":"ES256","kid":"k1","zip":"DEF"}`,
		`{"alg":"ES256","kid":"k1","cty":"JWT"}`,
	} {
		joseMustReject(t, header, set, sign(header), loopauth.ErrMalformedJWT)
	}
	for _, header := range []string{
		`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`,
		`{"alg":"ES256","kid":"k1","typ":"JOSE"}`,
	} {
		joseMustReject(t, header, set, sign(header))
	}
	joseMustReject(t, "kid of no key", set, sign(`{"alg":"ES256","kid":"k2"}`), loopauth.ErrNoUsableKey)
	joseMustReject(t, "kid differing in case", set, sign(`{"alg":"ES256","kid":"K1"}`), loopauth.ErrNoUsableKey)
}

// TestJOSEVectorsKeyBinding checks that a token is verified only with a key
// of its algorithm's type, of a matching alg when the key names one, and of
// its kid when it has one.
func TestJOSEVectorsKeyBinding(t *testing.T) {
	a2 := loadJOSEVector(t, "rfc7515-a2-rs256.json")
	a3 := loadJOSEVector(t, "rfc7515-a3-es256.json")
	r41 := loadJOSEVector(t, "rfc7520-4.1-rs256.json")
	a2Payload := a2.expectedPayload(t)

	t.Run("ES256 token, RSA-only set", func(t *testing.T) {
		joseMustReject(t, "Verify", joseParseSet(t, a2.JWKS), a3.JWS, loopauth.ErrNoUsableKey)
	})
	t.Run("RS256 token, EC-only set", func(t *testing.T) {
		joseMustReject(t, "Verify", joseParseSet(t, a3.JWKS), a2.JWS, loopauth.ErrNoUsableKey)
	})
	t.Run("RS256 token, RSA key with alg RS256", func(t *testing.T) {
		jwks := joseEditKey(t, a2.JWKS, func(k map[string]any) { k["alg"] = "RS256" })
		joseMustVerify(t, "Verify", joseParseSet(t, jwks), a2.JWS, a2Payload)
	})
	t.Run("RS256 token, RSA key with alg PS256", func(t *testing.T) {
		jwks := joseEditKey(t, a2.JWKS, func(k map[string]any) { k["alg"] = "PS256" })
		joseMustReject(t, "Verify", joseParseSet(t, jwks), a2.JWS)
	})
	t.Run("PS384 token, RSA key with alg RS256", func(t *testing.T) {
		r42 := loadJOSEVector(t, "rfc7520-4.2-ps384.json")
		jwks := joseEditKey(t, r42.JWKS, func(k map[string]any) { k["alg"] = "RS256" })
		joseMustReject(t, "Verify", joseParseSet(t, jwks), r42.JWS)
	})
	t.Run("kid not in the set", func(t *testing.T) {
		jwks := joseEditKey(t, r41.JWKS, func(k map[string]any) { k["kid"] = "Bilbo.baggins@hobbiton.example" })
		joseMustReject(t, "Verify", joseParseSet(t, jwks), r41.JWS, loopauth.ErrNoUsableKey)
	})
	t.Run("RSA key with a private member", func(t *testing.T) {
		for _, member := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			jwks := joseEditKey(t, a2.JWKS, func(k map[string]any) { k[member] = "AQAB" })
			set, err := loopauth.ParseJSONWebKeySet(jwks)
			if !errors.Is(err, loopauth.ErrInvalidJWKS) {
				t.Errorf("member %q: set %v, error %v; want ErrInvalidJWKS", member, set, err)
			}
		}
	})
}
