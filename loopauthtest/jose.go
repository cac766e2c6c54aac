package loopauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

var b64 = base64.RawURLEncoding

// signingKey is one private key with its JWS identity.
type signingKey struct {
	alg  string
	kid  string
	priv crypto.Signer
	jwk  map[string]any // public JWK, served at /jwks
}

// RSA-2048 generation takes tens to hundreds of milliseconds, so providers
// that never rotate share one key per process.
var (
	sharedRSAOnce sync.Once
	sharedRSAKey  *rsa.PrivateKey
	sharedRSAErr  error
)

func newSigningKey(alg string, fresh bool) (*signingKey, error) {
	var priv crypto.Signer
	switch alg {
	case AlgES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		priv = k
	case AlgRS256:
		if fresh {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return nil, err
			}
			priv = k
			break
		}
		sharedRSAOnce.Do(func() {
			sharedRSAKey, sharedRSAErr = rsa.GenerateKey(rand.Reader, 2048)
		})
		if sharedRSAErr != nil {
			return nil, sharedRSAErr
		}
		priv = sharedRSAKey
	default:
		return nil, fmt.Errorf("unsupported alg %q", alg)
	}
	return signingKeyFrom(alg, priv)
}

// signingKeyFrom gives priv its public JWK and kid.
func signingKeyFrom(alg string, priv crypto.Signer) (*signingKey, error) {
	jwk, err := publicJWK(priv.Public())
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(jwk)
	if err != nil {
		return nil, err
	}
	jwk["kid"], jwk["use"], jwk["alg"] = kid, "sig", alg
	return &signingKey{alg: alg, kid: kid, priv: priv, jwk: jwk}, nil
}

// publicJWK returns the required RFC 7518 members of a public key.
func publicJWK(pub crypto.PublicKey) (map[string]any, error) {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		// ECDH().Bytes() is the uncompressed point 0x04||X||Y with X and Y
		// already left-padded to 32 bytes, as RFC 7518 §6.2.1.2 demands.
		ek, err := pub.ECDH()
		if err != nil {
			return nil, err
		}
		pt := ek.Bytes()
		if len(pt) != 65 || pt[0] != 4 {
			return nil, errors.New("unexpected P-256 point encoding")
		}
		return map[string]any{
			"kty": "EC", "crv": "P-256",
			"x": b64.EncodeToString(pt[1:33]), "y": b64.EncodeToString(pt[33:]),
		}, nil
	case *rsa.PublicKey:
		return map[string]any{
			"kty": "RSA",
			"n":   b64.EncodeToString(pub.N.Bytes()),
			"e":   b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}, nil
	}
	return nil, fmt.Errorf("unsupported public key %T", pub)
}

// thumbprint is the RFC 7638 JWK thumbprint, used as kid so a key has the
// same id wherever it appears. encoding/json sorts map keys, which gives
// exactly the lexicographic member order RFC 7638 requires.
func thumbprint(jwk map[string]any) (string, error) {
	req := map[string]any{"kty": jwk["kty"]}
	switch jwk["kty"] {
	case "EC":
		req["crv"], req["x"], req["y"] = jwk["crv"], jwk["x"], jwk["y"]
	case "RSA":
		req["e"], req["n"] = jwk["e"], jwk["n"]
	}
	b, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return b64.EncodeToString(sum[:]), nil
}

// sign returns the compact JWS of claims.
func (k *signingKey) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": k.alg, "kid": k.kid, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			return "", err
		}
		// JWS wants the fixed-width R||S (RFC 7518 §3.4), not ASN.1 DER.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		if err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unsupported key %T", k.priv)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// atHash is the OpenID Connect at_hash for SHA-256 based algorithms: the
// left-most half of the hash of the access token, base64url.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64.EncodeToString(sum[:len(sum)/2])
}
