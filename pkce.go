package loopauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// randomBytes is the entropy of every per-flow secret: 256 bits, above the
// 2^-160 guessing bound of RFC 6749 §10.10 and the RFC 7636 §7.1
// recommendation of "a 32-octet sequence" for the verifier.
const randomBytes = 32

// newRandomString returns 32 bytes from crypto/rand as unpadded base64url:
// 43 characters from the RFC 7636 §4.1 unreserved set. It is used for the
// PKCE verifier, the state and the nonce, so each is a valid verifier.
func newRandomString() string {
	b := make([]byte, randomBytes)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (and Go 1.24+
		// crashes the program itself); a flow without entropy must not run.
		panic("loopauth: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// s256Challenge is the RFC 7636 §4.2 S256 transform:
// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))). "plain" is never used
// (§7.2: clients MUST NOT downgrade).
func s256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// flowSecrets are the values one authorization flow generates and must not
// reuse: the PKCE verifier, the CSRF state and (OpenID mode) the nonce.
type flowSecrets struct {
	verifier string
	state    string
	nonce    string        // OpenID mode only (OpenID Connect Core §3.1.2.1)
	progress *flowProgress // the flow's OnProgress, told of the steps (nil: nobody)
}

func newFlowSecrets(openID bool) flowSecrets {
	s := flowSecrets{verifier: newRandomString(), state: newRandomString()}
	if openID {
		s.nonce = newRandomString()
	}
	return s
}

// equalSecret compares a received value with the expected one in constant
// time. An empty expected value never matches, so a bug that loses the
// state cannot turn "" == "" into a pass.
func equalSecret(got, want string) bool {
	if want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
