package loopauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var b64 = base64.RawURLEncoding.EncodeToString

// testKeys are generated once: RSA generation is slow.
var testKeys = sync.OnceValue(func() (k struct {
	rsa  *rsa.PrivateKey
	rsa2 *rsa.PrivateKey
	p256 *ecdsa.PrivateKey
	p384 *ecdsa.PrivateKey
	p521 *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
}) {
	k.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	k.rsa2, _ = rsa.GenerateKey(rand.Reader, 2048)
	k.p256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.p384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k.p521, _ = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
	return k
})

func rsaJWK(pub *rsa.PublicKey, extra string) string {
	return fmt.Sprintf(`{"kty":"RSA","n":%q,"e":%q%s}`, b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes()), extra)
}

func ecJWK(pub *ecdsa.PublicKey, crv string, extra string) string {
	size := (pub.Curve.Params().BitSize + 7) / 8
	return fmt.Sprintf(`{"kty":"EC","crv":%q,"x":%q,"y":%q%s}`, crv, b64(pub.X.FillBytes(make([]byte, size))), b64(pub.Y.FillBytes(make([]byte, size))), extra)
}

func edJWK(pub ed25519.PublicKey, extra string) string {
	return fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q%s}`, b64(pub), extra)
}

func jwks(keys ...string) []byte { return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`) }

// signJWS signs header and claims with key for alg, the way a provider does.
func signJWS(t testing.TB, alg string, key crypto.Signer, header map[string]any, claims string) string {
	t.Helper()
	if header == nil {
		header = map[string]any{}
	}
	header["alg"] = alg
	h, _ := json.Marshal(header)
	in := b64(h) + "." + b64([]byte(claims))
	var sig []byte
	var err error
	hashFor := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	switch {
	case alg == "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(in))
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		hf := hashFor[alg[2:]]
		hh := hf.New()
		hh.Write([]byte(in))
		if alg[0] == 'R' {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), hf, hh.Sum(nil))
		} else {
			sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), hf, hh.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
	case strings.HasPrefix(alg, "ES"):
		hf := hashFor[alg[2:]]
		hh := hf.New()
		hh.Write([]byte(in))
		priv := key.(*ecdsa.PrivateKey)
		r, s, serr := ecdsa.Sign(rand.Reader, priv, hh.Sum(nil))
		err = serr
		size := (priv.Curve.Params().BitSize + 7) / 8
		sig = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

const testClaims = `{"iss":"https://as.example","sub":"u1","aud":"c","exp":4000000000,"iat":1700000000}`

// TestVerifyAlgorithms verifies every supported algorithm, and checks that
// each key verifies only the algorithms that fit it (J-13).
func TestVerifyAlgorithms(t *testing.T) {
	k := testKeys()
	keys := map[string]struct {
		jwk  string
		priv crypto.Signer
	}{
		"RSA":   {rsaJWK(&k.rsa.PublicKey, `,"kid":"rsa"`), k.rsa},
		"P-256": {ecJWK(&k.p256.PublicKey, "P-256", `,"kid":"p256"`), k.p256},
		"P-384": {ecJWK(&k.p384.PublicKey, "P-384", `,"kid":"p384"`), k.p384},
		"P-521": {ecJWK(&k.p521.PublicKey, "P-521", `,"kid":"p521"`), k.p521},
		"Ed":    {edJWK(k.ed.Public().(ed25519.PublicKey), `,"kid":"ed"`), k.ed},
	}
	fits := map[string]string{
		"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
		"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed",
	}
	var all []string
	for _, key := range keys {
		all = append(all, key.jwk)
	}
	set, err := ParseJSONWebKeySet(jwks(all...))
	if err != nil {
		t.Fatal(err)
	}
	for alg, keyName := range fits {
		for name, key := range keys {
			tok := signJWS(t, alg, keys[keyName].priv, map[string]any{"kid": kidOf(name)}, testClaims)
			_ = key
			payload, err := set.Verify(tok)
			if name == keyName {
				if err != nil || string(payload) != testClaims {
					t.Errorf("%s with its key: %v", alg, err)
				}
				continue
			}
			// The same signature presented with another key's kid.
			if err == nil || !errors.Is(err, ErrNoUsableKey) && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s signed by %s, kid of %s: err = %v", alg, keyName, name, err)
			}
		}
		// Without kid: the set finds the key that fits.
		if _, err := set.Verify(signJWS(t, alg, keys[keyName].priv, nil, testClaims)); err != nil {
			t.Errorf("%s without kid: %v", alg, err)
		}
	}
}

func kidOf(name string) string {
	return map[string]string{"RSA": "rsa", "P-256": "p256", "P-384": "p384", "P-521": "p521", "Ed": "ed"}[name]
}

// TestParseJWKSRows covers rows K-02..K-12 and K-16.
func TestParseJWKSRows(t *testing.T) {
	k := testKeys()
	good := rsaJWK(&k.rsa.PublicKey, `,"kid":"good"`)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256x := b64(k.p256.X.FillBytes(make([]byte, 32)))
	cases := []struct {
		id   string
		data []byte
		// usable is the number of keys that must survive; -1 means the
		// set must be refused with wantErr.
		usable  int
		wantErr error
	}{
		{"K-02 too many keys", jwks(strings.Repeat(good+",", maxJWKSKeys) + good), -1, ErrInvalidJWKS},
		{"K-03 empty object", []byte(`{}`), -1, ErrInvalidJWKS},
		{"K-03 keys not an array", []byte(`{"keys":{}}`), -1, ErrInvalidJWKS},
		{"K-03 no keys", jwks(), -1, ErrNoUsableKey},
		{"K-03 empty modulus", jwks(`{"kty":"RSA","n":"","e":"AQAB"}`), -1, ErrNoUsableKey},
		{"K-03 empty coordinate", jwks(`{"kty":"EC","crv":"P-256","x":"","y":""}`), -1, ErrNoUsableKey},
		{"K-04 unknown kinds skipped", jwks(good, `{"kty":"AKP","alg":"ML-DSA-44","pub":"x"}`, `{"kty":"foo"}`, `{"kty":"OKP","crv":"Ed448","x":"AA"}`, `{}`), 1, nil},
		{"K-05 use enc", jwks(rsaJWK(&k.rsa.PublicKey, `,"use":"enc"`)), -1, ErrNoUsableKey},
		{"K-05 key_ops encrypt", jwks(rsaJWK(&k.rsa.PublicKey, `,"key_ops":["encrypt"]`)), -1, ErrNoUsableKey},
		{"K-06 use sig with key_ops encrypt", jwks(rsaJWK(&k.rsa.PublicKey, `,"use":"sig","key_ops":["encrypt"]`)), -1, ErrNoUsableKey},
		{"K-06 use sig with key_ops verify", jwks(rsaJWK(&k.rsa.PublicKey, `,"use":"sig","key_ops":["verify"]`)), 1, nil},
		{"K-07 HS256 alg on an RSA key", jwks(rsaJWK(&k.rsa.PublicKey, `,"alg":"HS256"`)), -1, ErrNoUsableKey},
		{"K-07 oct key", jwks(`{"kty":"oct","kid":"s","alg":"HS256"}`), -1, ErrNoUsableKey},
		{"K-07 ES256 alg on a P-384 key", jwks(ecJWK(&k.p384.PublicKey, "P-384", `,"alg":"ES256"`)), -1, ErrNoUsableKey},
		{"K-08 1024-bit RSA", jwks(rsaJWK(&weak.PublicKey, "")), -1, ErrNoUsableKey},
		{"K-08 e = 3", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"Aw"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-08 e = 1", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQ"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-08 even e", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAA"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-08 huge e", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAAAAE"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-08 e absent", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-08 even n", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAB"}`, b64(new(big.Int).Sub(k.rsa.N, big.NewInt(1)).Bytes()))), -1, ErrNoUsableKey},
		{"K-09 leading zero in n", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAB"}`, b64(append([]byte{0}, k.rsa.N.Bytes()...)))), -1, ErrNoUsableKey},
		{"K-09 leading zero in e", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AAEAAQ"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-10 secp256k1", jwks(`{"kty":"EC","crv":"secp256k1","x":"` + p256x + `","y":"` + p256x + `"}`), -1, ErrNoUsableKey},
		{"K-10 short x", jwks(`{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 31)) + `","y":"` + p256x + `"}`), -1, ErrNoUsableKey},
		{"K-10 point off the curve", jwks(`{"kty":"EC","crv":"P-256","x":"` + p256x + `","y":"` + p256x + `"}`), -1, ErrNoUsableKey},
		{"K-10 point at zero", jwks(`{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}`), -1, ErrNoUsableKey},
		{"K-12 private RSA members", jwks(rsaJWK(&k.rsa.PublicKey, `,"d":"AQAB"`)), -1, ErrInvalidJWKS},
		{"K-12 symmetric secret", jwks(good, `{"kty":"oct","k":"c2VjcmV0"}`), -1, ErrInvalidJWKS},
		{"K-16 x5c ignored", jwks(rsaJWK(&k.rsa.PublicKey, `,"x5c":["not a certificate"]`)), 1, nil},
		{"duplicate member", []byte(`{"keys":[],"keys":[]}`), -1, ErrInvalidJWKS},
		{"case-variant member", []byte(`{"Keys":[]}`), -1, ErrInvalidJWKS},
		{"bad kid type", jwks(rsaJWK(&k.rsa.PublicKey, `,"kid":5`)), -1, ErrNoUsableKey},
		{"null kid", jwks(rsaJWK(&k.rsa.PublicKey, `,"kid":null`)), -1, ErrNoUsableKey},
		{"null alg", jwks(rsaJWK(&k.rsa.PublicKey, `,"alg":null`)), -1, ErrNoUsableKey},
		{"K-08 even e above the minimum", jwks(fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAC"}`, b64(k.rsa.N.Bytes()))), -1, ErrNoUsableKey},
		{"K-10 short Ed25519 x", jwks(`{"kty":"OKP","crv":"Ed25519","x":"` + b64(make([]byte, 31)) + `"}`), -1, ErrNoUsableKey},
		{"K-10 X25519 key", jwks(`{"kty":"OKP","crv":"X25519","x":"` + b64(k.ed.Public().(ed25519.PublicKey)) + `"}`), -1, ErrNoUsableKey},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			set, err := ParseJSONWebKeySet(tc.data)
			if tc.usable < 0 {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(set.keys) != tc.usable {
				t.Fatalf("set = %v, err = %v; want %d usable keys", set, err, tc.usable)
			}
		})
	}
}

// TestVerifyKeySelection covers K-11, K-13, J-14 and J-15.
func TestVerifyKeySelection(t *testing.T) {
	k := testKeys()
	signed := func(header map[string]any) string { return signJWS(t, "RS256", k.rsa, header, testClaims) }
	one, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)))
	two, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa2.PublicKey, `,"kid":"b"`), rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)))
	dup, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa2.PublicKey, `,"kid":"a"`), rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)))
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		id   string
		set  *JSONWebKeySet
		tok  string
		want error // nil: verifies
	}{
		{"K-13 single keyed key, token without kid", one, signed(nil), nil},
		{"K-13 several keys, token without kid", two, signed(nil), nil},
		{"kid selects the key", two, signed(map[string]any{"kid": "a"}), nil},
		{"kid selects the wrong key", two, signed(map[string]any{"kid": "b"}), ErrInvalidSignature},
		{"K-11 two keys share the kid", dup, signed(map[string]any{"kid": "a"}), ErrNoUsableKey},
		{"J-15 unknown kid", one, signed(map[string]any{"kid": "../../dev/null"}), ErrNoUsableKey},
		{"J-15 kid with NUL", one, signed(map[string]any{"kid": "a\x00"}), ErrMalformedJWT},
		{"J-16 numeric kid", one, signed(map[string]any{"kid": 123}), ErrMalformedJWT},
		{"J-16 300-byte kid", one, signed(map[string]any{"kid": strings.Repeat("k", 300)}), ErrMalformedJWT},
		{"J-14 embedded jwk is ignored", one, signJWS(t, "RS256", attacker, map[string]any{"jwk": json.RawMessage(rsaJWK(&attacker.PublicKey, ""))}, testClaims), ErrInvalidSignature},
		{"J-14 jku is ignored", one, signJWS(t, "RS256", attacker, map[string]any{"jku": "https://evil.example/jwks", "x5u": "https://evil.example/c"}, testClaims), ErrInvalidSignature},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			_, err := tc.set.Verify(tc.tok)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVerifyHostileTokens covers the J rows about the compact form, the
// header and the signature bytes.
func TestVerifyHostileTokens(t *testing.T) {
	k := testKeys()
	set, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa.PublicKey, ""), ecJWK(&k.p256.PublicKey, "P-256", "")))
	good := signJWS(t, "ES256", k.p256, nil, testClaims)
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	hdr := func(h string) string { return b64([]byte(h)) + "." + parts[1] + "." + parts[2] }
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	n := elliptic.P256().Params().N
	der := appendASN1Signature(nil, r.Bytes(), s.Bytes())
	cases := []struct {
		id, tok string
		want    error
	}{
		{"J-01 oversized", strings.Repeat("a", maxCompactJWTBytes+1), ErrMalformedJWT},
		{"J-02 many dots", strings.Repeat(".", 100000), ErrMalformedJWT},
		{"J-02 two segments", parts[0] + "." + parts[1], ErrMalformedJWT},
		{"J-02 empty header", "." + parts[1] + "." + parts[2], ErrMalformedJWT},
		{"J-02 empty payload", parts[0] + ".." + parts[2], ErrMalformedJWT},
		{"J-03 five segments (JWE)", good + ".a.b", ErrMalformedJWT},
		{"J-04 padding", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformedJWT},
		{"J-04 line break", parts[0] + "." + parts[1][:5] + "\r\n" + parts[1][5:] + "." + parts[2], ErrMalformedJWT},
		{"J-04 space", parts[0] + " ." + parts[1] + "." + parts[2], ErrMalformedJWT},
		{"J-05 non-canonical last character", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + "B", ErrMalformedJWT},
		{"J-06 header is an array", hdr(`["ES256"]`), ErrMalformedJWT},
		{"J-06 header is null", hdr(`null`), ErrMalformedJWT},
		{"J-06 header with BOM", hdr("\ufeff{\"alg\":\"ES256\"}"), ErrMalformedJWT},
		{"J-06 header invalid UTF-8", hdr("{\"alg\":\"ES256\",\"x\":\"\xff\"}"), ErrMalformedJWT},
		{"J-07 JSON serialization", `{"payload":"` + parts[1] + `","signatures":[]}`, ErrMalformedJWT},
		{"J-08 header with trailing data", hdr(`{"alg":"ES256"} {"alg":"none"}`), ErrMalformedJWT},
		{"J-09 duplicate alg", hdr(`{"alg":"ES256","alg":"none"}`), ErrMalformedJWT},
		{"J-09 case-variant alg", hdr(`{"alg":"ES256","ALG":"none"}`), ErrMalformedJWT},
		{"J-09 escaped alg name", hdr(`{"alg":"ES256","\u0061lg":"none"}`), ErrMalformedJWT},
		{"J-10 none", hdr(`{"alg":"none"}`), ErrAlgNotAllowed},
		{"J-10 nOnE", hdr(`{"alg":"nOnE"}`), ErrAlgNotAllowed},
		{"J-10 empty alg", hdr(`{"alg":""}`), ErrAlgNotAllowed},
		{"J-10 missing alg", hdr(`{"kid":"x"}`), ErrMalformedJWT},
		{"J-10 null alg", hdr(`{"alg":null}`), ErrMalformedJWT},
		{"J-10 numeric alg", hdr(`{"alg":123}`), ErrMalformedJWT},
		{"J-10 alg array", hdr(`{"alg":["ES256"]}`), ErrMalformedJWT},
		{"J-10 lower-case es256", hdr(`{"alg":"es256"}`), ErrAlgNotAllowed},
		{"J-11 ES256K", hdr(`{"alg":"ES256K"}`), ErrAlgNotAllowed},
		{"J-11 HS512", hdr(`{"alg":"HS512"}`), ErrAlgNotAllowed},
		{"J-12 HS256 with the public key as secret", hdr(`{"alg":"HS256"}`), ErrAlgNotAllowed},
		{"J-13 ES256 signature presented as RS256", hdr(`{"alg":"RS256"}`), ErrInvalidSignature},
		{"J-17 crit", hdr(`{"alg":"ES256","crit":["http://example.invalid/UNDEFINED"],"http://example.invalid/UNDEFINED":true}`), ErrMalformedJWT},
		{"J-17 empty crit", hdr(`{"alg":"ES256","crit":[]}`), ErrMalformedJWT},
		{"J-18 b64 false", hdr(`{"alg":"ES256","b64":false}`), ErrMalformedJWT},
		{"J-18 typ at+jwt", hdr(`{"alg":"ES256","typ":"at+jwt"}`), ErrMalformedJWT},
		{"J-18 typ number", hdr(`{"alg":"ES256","typ":5}`), ErrMalformedJWT},
		{"J-19 zip", hdr(`{"alg":"ES256","zip":"DEF"}`), ErrMalformedJWT},
		{"J-19 nested cty", hdr(`{"alg":"ES256","cty":"JWT"}`), ErrMalformedJWT},
		{"J-20 DER signature", parts[0] + "." + parts[1] + "." + b64(der), ErrInvalidSignature},
		{"J-21 63-byte signature", parts[0] + "." + parts[1] + "." + b64(sig[:63]), ErrInvalidSignature},
		{"J-21 trailing zeros", parts[0] + "." + parts[1] + "." + b64(append(append([]byte{}, sig...), 0, 0)), ErrInvalidSignature},
		{"J-22 r = s = 0", parts[0] + "." + parts[1] + "." + b64(make([]byte, 64)), ErrInvalidSignature},
		{"J-22 r = s = n", parts[0] + "." + parts[1] + "." + b64(append(n.FillBytes(make([]byte, 32)), n.FillBytes(make([]byte, 32))...)), ErrInvalidSignature},
		{"J-22 r + n", parts[0] + "." + parts[1] + "." + b64(append(new(big.Int).Add(r, n).FillBytes(make([]byte, 33))[1:], sig[32:]...)), ErrInvalidSignature},
		{"J-26 empty signature", parts[0] + "." + parts[1] + ".", ErrMalformedJWT},
		{"J-26 signature of another token", parts[0] + "." + b64([]byte(`{"sub":"admin"}`)) + "." + parts[2], ErrInvalidSignature},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			payload, err := set.Verify(tc.tok)
			if !errors.Is(err, tc.want) || payload != nil {
				t.Errorf("err = %v, payload %q; want %v", err, payload, tc.want)
			}
		})
	}
	// J-23: ECDSA is malleable; (r, n-s) verifies too, which is why
	// nothing here treats signature bytes as an identifier.
	mall := append(r.FillBytes(make([]byte, 32)), new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)
	if _, err := set.Verify(parts[0] + "." + parts[1] + "." + b64(mall)); err != nil {
		t.Errorf("J-23 (r, n-s): %v", err)
	}
}

// TestVerifyEmptyPayload: a token whose empty payload is correctly
// signed is still refused (detached payloads are not supported), by
// Verify and by a RemoteJWKSValidator.
func TestVerifyEmptyPayload(t *testing.T) {
	k := testKeys()
	set, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa.PublicKey, ""), ecJWK(&k.p256.PublicKey, "P-256", "")))
	for _, alg := range []string{"RS256", "ES256"} {
		var key crypto.Signer = k.rsa
		if alg == "ES256" {
			key = k.p256
		}
		tok := signJWS(t, alg, key, nil, "")
		if !strings.Contains(tok, "..") {
			t.Fatalf("%s: token %q has a payload", alg, tok)
		}
		payload, err := set.Verify(tok)
		if !errors.Is(err, ErrMalformedJWT) || payload != nil || !strings.Contains(err.Error(), "payload is empty") {
			t.Errorf("%s: Verify = %q, %v; want ErrMalformedJWT for the empty payload", alg, payload, err)
		}
	}
	srv := newJWKSServer(t, jwks(rsaJWK(&k.rsa.PublicKey, "")))
	if err := NewRemoteJWKSValidator(srv.URL, "").Validate(context.Background(), signJWS(t, "RS256", k.rsa, nil, "")); !errors.Is(err, ErrMalformedJWT) {
		t.Errorf("Validate: err = %v, want ErrMalformedJWT", err)
	}
}

// TestRemoteJWKSValidateTimes: Validate, used on its own, refuses an
// expired or not yet valid token whose signature is good, with the
// flow's 60 s of leeway, with or without a client ID.
func TestRemoteJWKSValidateTimes(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwks(rsaJWK(&k.rsa.PublicKey, "")))
	now := time.Unix(1800000000, 0)
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":"https://as.example","sub":"u1","aud":"c","iat":%d%s}`, now.Unix()-3600, extra)
	}
	exp := func(d time.Duration) string { return fmt.Sprintf(`,"exp":%d`, now.Add(d).Unix()) }
	nbf := func(d time.Duration) string { return fmt.Sprintf(`,"nbf":%d`, now.Add(d).Unix()) }
	cases := []struct {
		name   string
		claims string
		want   error // nil: valid
	}{
		{"valid", claims(exp(time.Hour)), nil},
		{"expired beyond the leeway", claims(exp(-clockLeeway - time.Second)), ErrIDTokenExpired},
		{"expired an hour ago", claims(exp(-time.Hour)), ErrIDTokenExpired},
		{"expired at the edge of the leeway", claims(exp(-clockLeeway)), nil},
		{"expired within the leeway", claims(exp(-clockLeeway + time.Second)), nil},
		{"nbf beyond the leeway", claims(exp(time.Hour) + nbf(clockLeeway+time.Second)), ErrIDTokenNotYetValid},
		{"nbf at the edge of the leeway", claims(exp(time.Hour) + nbf(clockLeeway)), nil},
		{"nbf within the leeway", claims(exp(time.Hour) + nbf(clockLeeway-time.Second)), nil},
		{"fractional exp beyond the leeway", claims(fmt.Sprintf(`,"exp":%d.5`, now.Add(-clockLeeway-time.Second).Unix())), ErrIDTokenExpired},
	}
	for _, clientID := range []string{"c", ""} {
		v := NewRemoteJWKSValidator(srv.URL, clientID)
		v.now = func() time.Time { return now }
		for _, tc := range cases {
			t.Run(fmt.Sprintf("client %q/%s", clientID, tc.name), func(t *testing.T) {
				err := v.Validate(context.Background(), signJWS(t, "RS256", k.rsa, nil, tc.claims))
				switch {
				case tc.want == nil && err != nil:
					t.Errorf("err = %v, want valid", err)
				case tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidIDToken)):
					t.Errorf("err = %v, want %v and ErrInvalidIDToken", err, tc.want)
				}
			})
		}
	}
	// Signature first: a forged token fails on its signature, whatever its
	// dates say.
	v := NewRemoteJWKSValidator(srv.URL, "c")
	v.now = func() time.Time { return now }
	if err := v.Validate(context.Background(), signJWS(t, "RS256", k.rsa2, nil, claims(exp(-time.Hour)))); !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrIDTokenExpired) {
		t.Errorf("forged and expired: err = %v, want the signature error only", err)
	}
}

// TestVerifyRSAPadding covers J-24 and J-25.
func TestVerifyRSAPadding(t *testing.T) {
	k := testKeys()
	set, _ := ParseJSONWebKeySet(jwks(rsaJWK(&k.rsa.PublicKey, "")))
	good := signJWS(t, "RS256", k.rsa, nil, testClaims)
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	with := func(s []byte) string { return parts[0] + "." + parts[1] + "." + b64(s) }
	nBytes := k.rsa.N.Bytes()
	for name, bad := range map[string][]byte{
		"prepended zero":   append([]byte{0}, sig...),
		"appended zero":    append(append([]byte{}, sig...), 0),
		"truncated":        sig[:len(sig)-1],
		"zero":             make([]byte, len(sig)),
		"one":              new(big.Int).SetInt64(1).FillBytes(make([]byte, len(sig))),
		"n":                nBytes,
		"n-1":              new(big.Int).Sub(k.rsa.N, big.NewInt(1)).FillBytes(make([]byte, len(sig))),
		"PS256 presented":  mustDecode(strings.Split(signJWS(t, "PS256", k.rsa, nil, testClaims), ".")[2]),
		"SHA-512 digest":   mustDecode(strings.Split(signJWS(t, "RS512", k.rsa, nil, testClaims), ".")[2]),
		"missing NULL DER": signRSAMissingNull(t, k.rsa, parts[0]+"."+parts[1]),
	} {
		if _, err := set.Verify(with(bad)); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("RS256 %s: err = %v", name, err)
		}
	}
	// J-25: PS256 with a salt of 0 or 20 bytes.
	in := parts[0][:0] + b64([]byte(`{"alg":"PS256"}`)) + "." + parts[1]
	sum := sha256.Sum256([]byte(in))
	for _, salt := range []int{0, 20} {
		s, err := rsa.SignPSS(rand.Reader, k.rsa, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: salt})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := set.Verify(in + "." + b64(s)); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("PS256 salt %d: err = %v", salt, err)
		}
	}
}

func mustDecode(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}

// signRSAMissingNull builds a PKCS#1 v1.5 signature whose DigestInfo omits
// the NULL parameters (Wycheproof's "acceptable" MissingNull), which must
// be rejected.
func signRSAMissingNull(t *testing.T, key *rsa.PrivateKey, in string) []byte {
	sum := sha256.Sum256([]byte(in))
	prefix := []byte{0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20}
	em := make([]byte, key.Size())
	t0 := append(prefix, sum[:]...)
	em[1] = 1
	for i := 2; i < len(em)-len(t0)-1; i++ {
		em[i] = 0xff
	}
	copy(em[len(em)-len(t0):], t0)
	c := new(big.Int).Exp(new(big.Int).SetBytes(em), key.D, key.N)
	return c.FillBytes(make([]byte, key.Size()))
}

// jwksServer serves a key set and counts requests.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	header string
	status int
	hits   atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: 200}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.header != "" {
			w.Header().Set("Cache-Control", s.header)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status = body, status
}

// TestRemoteJWKSCache covers K-14, K-15 and the cache rules.
func TestRemoteJWKSCache(t *testing.T) {
	k := testKeys()
	ctx := context.Background()
	srv := newJWKSServer(t, jwks(rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)))
	now := time.Unix(1700000000, 0)
	v := NewRemoteJWKSValidator(srv.URL, "c")
	v.now = func() time.Time { return now }
	tokA := signJWS(t, "RS256", k.rsa, map[string]any{"kid": "a"}, testClaims)

	// Concurrent first use shares one fetch.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Validate(ctx, tokA); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 50 concurrent first uses, want 1", n)
	}

	// K-14: unknown kids cost at most one fetch per minute.
	for i := 0; i < 1000; i++ {
		forged := signJWS(t, "RS256", k.rsa, map[string]any{"kid": fmt.Sprint("forged-", i)}, testClaims)
		if err := v.Validate(ctx, forged); !errors.Is(err, ErrNoUsableKey) {
			t.Fatalf("forged kid: %v", err)
		}
		if i == 0 {
			i = 995 // signing 1000 RSA tokens is slow; a few suffice after the first
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after forged kids, want 2 (one refetch)", n)
	}

	// Rotation after the pause: the new kid is fetched once and verifies.
	srv.set(jwks(rsaJWK(&k.rsa2.PublicKey, `,"kid":"b"`), rsaJWK(&k.rsa.PublicKey, `,"kid":"a"`)), 200)
	tokB := signJWS(t, "RS256", k.rsa2, map[string]any{"kid": "b"}, testClaims)
	if err := v.Validate(ctx, tokB); !errors.Is(err, ErrNoUsableKey) {
		t.Fatalf("within the pause the new kid must not be fetched: %v", err)
	}
	now = now.Add(jwksRefetchPause)
	if err := v.Validate(ctx, tokB); err != nil {
		t.Fatalf("after the pause: %v", err)
	}

	// K-15: a failing refresh keeps the cached keys.
	srv.set([]byte(`garbage`), 500)
	now = now.Add(2 * jwksDefaultTTL)
	if err := v.Validate(ctx, tokA); err != nil {
		t.Fatalf("cached keys dropped after a failed refresh: %v", err)
	}
	hits := srv.hits.Load()
	if err := v.Validate(ctx, signJWS(t, "RS256", k.rsa, map[string]any{"kid": "zzz"}, testClaims)); !errors.Is(err, ErrNoUsableKey) {
		t.Errorf("unknown kid during an outage: %v", err)
	}
	if n := srv.hits.Load(); n != hits+1 {
		t.Errorf("%d fetches for an unknown kid with an expired cache, want %d", n, hits+1)
	}

	// Audience of the validator's client ID.
	if err := NewRemoteJWKSValidator(srv.URL, "other").Validate(ctx, tokA); !errors.Is(err, ErrInvalidAudience) && !errors.Is(err, ErrInvalidJWKS) {
		t.Errorf("wrong audience: %v", err)
	}
}

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                          jwksDefaultTTL,
		"max-age=600":               10 * time.Minute,
		"public, max-age=19800":     19800 * time.Second,
		"max-age=1":                 jwksMinTTL,
		"max-age=99999999999":       jwksMaxTTL,
		"no-cache":                  jwksMinTTL,
		"no-store, max-age=3600":    jwksMinTTL,
		"max-age=-5":                jwksDefaultTTL,
		"max-age=abc":               jwksDefaultTTL,
		"MAX-AGE=120, must-revalid": jwksMinTTL,
	} {
		if got := cacheTTL(cc); got != want {
			t.Errorf("cacheTTL(%q) = %v, want %v", cc, got, want)
		}
	}
}

// TestRemoteJWKSFetchRules covers K-01 and K-02: the key-set URL and the
// response are bounded and checked.
func TestRemoteJWKSFetchRules(t *testing.T) {
	k := testKeys()
	tok := signJWS(t, "RS256", k.rsa, nil, testClaims)
	big := newJWKSServer(t, append([]byte(`{"keys":[],"pad":"`), append([]byte(strings.Repeat("a", maxJWKSBytes)), '"', '}')...))
	html := newJWKSServer(t, jwks(rsaJWK(&k.rsa.PublicKey, "")))
	html.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(jwks(rsaJWK(&k.rsa.PublicKey, "")))
	})
	for name, url := range map[string]string{
		"K-01 http to a remote host": "http://as.example/jwks",
		"K-02 600 KiB document":      big.URL,
		"HTML content type":          html.URL,
		"relative URL":               "/jwks",
	} {
		if err := NewRemoteJWKSValidator(url, "").Validate(context.Background(), tok); !errors.Is(err, ErrInvalidJWKS) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// FuzzParseJSONWebKeySet: any document yields a set or ErrInvalidJWKS,
// never a panic, and every key of an accepted set fits some algorithm.
func FuzzParseJSONWebKeySet(f *testing.F) {
	seedFromTestdata(f, "jwks")
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseJSONWebKeySet(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidJWKS) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, k := range set.keys {
			usable := false
			for _, alg := range supportedAlgs {
				usable = usable || k.fits(alg)
			}
			if !usable {
				t.Fatalf("accepted a key that verifies nothing: %+v", k)
			}
		}
	})
}

// FuzzVerifyJWS: any string yields a payload or a typed error; a payload
// comes only with a nil error, and only for a correctly signed token.
func FuzzVerifyJWS(f *testing.F) {
	seedFromTestdata(f, "jwt")
	k := testKeys()
	set, err := ParseJSONWebKeySet(jwks(ecJWK(&k.p256.PublicKey, "P-256", "")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(signJWS(f, "ES256", k.p256, nil, testClaims)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		payload, err := set.Verify(string(raw))
		switch {
		case err == nil && payload == nil:
			t.Fatal("nil payload without an error")
		case err != nil && payload != nil:
			t.Fatal("payload with an error")
		case err != nil:
			for _, e := range []error{ErrMalformedJWT, ErrAlgNotAllowed, ErrNoUsableKey, ErrInvalidSignature} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error %v", err)
		}
	})
}
