// Floor is a size probe (see make size): the job of ../login written by
// hand with the standard library only, minimal but complete enough to
// sign in to a real OpenID provider. It discovers the provider, serves a
// loopback callback, opens the browser, redeems the code with PKCE,
// verifies the ID token's RS256 or ES256 signature against the provider's
// keys, checks iss, aud, exp and nonce, and prints the subject. Built with
// -tags https, it serves the callback over HTTPS with a self-signed
// certificate.
//
//	floor ISSUER CLIENT_ID
package main

import (
	"context"
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
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floor ISSUER CLIENT_ID")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	sub, err := login(ctx, os.Args[1], os.Args[2])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(sub)
}

// provider is the part of the discovery document the flow needs.
type provider struct {
	Issuer   string `json:"issuer"`
	AuthURL  string `json:"authorization_endpoint"`
	TokenURL string `json:"token_endpoint"`
	JWKSURI  string `json:"jwks_uri"`
}

func login(ctx context.Context, issuer, clientID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var p provider
	if err := getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &p); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if p.Issuer != issuer {
		return "", fmt.Errorf("discovery: the document names issuer %q", p.Issuer)
	}

	verifier, state, nonce := random(), random(), random()
	challenge := sha256.Sum256([]byte(verifier))
	ln, scheme, err := listen()
	if err != nil {
		return "", err
	}
	redirectURI := scheme + "://" + ln.Addr().String() + "/callback"
	codes := make(chan url.Values, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != state {
			http.Error(w, "not the sign-in redirect", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "Done: you may close this tab.")
		select {
		case codes <- q:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	authURL, err := url.Parse(p.AuthURL)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	params := authURL.Query()
	for k, v := range map[string]string{
		"response_type": "code", "client_id": clientID, "redirect_uri": redirectURI,
		"scope": "openid email", "state": state, "nonce": nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(challenge[:]), "code_challenge_method": "S256",
	} {
		params.Set(k, v)
	}
	authURL.RawQuery = params.Encode()
	fmt.Fprintln(os.Stderr, "Sign in at", authURL)
	openBrowser(authURL.String())

	var q url.Values
	select {
	case q = <-codes:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("the provider refused: %q", e)
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {redirectURI}, "client_id": {clientID}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, "POST", p.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := doJSON(req, &tok); err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	return verify(ctx, tok.IDToken, p, clientID, nonce)
}

// verify checks the ID token's signature with the provider's keys, then
// its claims, and returns its subject.
func verify(ctx context.Context, raw string, p provider, clientID, nonce string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("ID token: not a compact JWS")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return "", fmt.Errorf("ID token header: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("ID token signature: %w", err)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := getJSON(ctx, p.JWKSURI, &set); err != nil {
		return "", fmt.Errorf("provider keys: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	valid := false
	for _, k := range set.Keys {
		if header.Kid != "" && k.Kid != header.Kid {
			continue
		}
		switch {
		case header.Alg == "RS256" && k.Kty == "RSA":
			e := bigInt(k.E)
			if !e.IsInt64() || e.Int64() > 1<<31-1 {
				continue
			}
			pub := &rsa.PublicKey{N: bigInt(k.N), E: int(e.Int64())}
			valid = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
		case header.Alg == "ES256" && k.Kty == "EC" && k.Crv == "P-256" && len(sig) == 64:
			pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: bigInt(k.X), Y: bigInt(k.Y)}
			valid = ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}
		if valid {
			break
		}
	}
	if !valid {
		return "", errors.New("ID token: no key of the provider verifies its signature")
	}

	var c struct {
		Iss   string          `json:"iss"`
		Sub   string          `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   float64         `json:"exp"`
		Nonce string          `json:"nonce"`
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return "", fmt.Errorf("ID token claims: %w", err)
	}
	var auds []string
	if json.Unmarshal(c.Aud, &auds) != nil {
		auds = []string{""}
		json.Unmarshal(c.Aud, &auds[0])
	}
	audOK := false
	for _, a := range auds {
		audOK = audOK || a == clientID
	}
	switch {
	case c.Iss != p.Issuer:
		return "", errors.New("ID token: wrong issuer")
	case !audOK:
		return "", errors.New("ID token: not issued to this client")
	case !time.Now().Before(time.Unix(int64(c.Exp), 0)):
		return "", errors.New("ID token: expired")
	case c.Nonce != nonce:
		return "", errors.New("ID token: wrong nonce")
	case c.Sub == "":
		return "", errors.New("ID token: no subject")
	}
	return c.Sub, nil
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	return doJSON(req, v)
}

func doJSON(req *http.Request, v any) error {
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", req.URL.Redacted(), resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func bigInt(s string) *big.Int {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return new(big.Int).SetBytes(b)
}

// random returns 32 random bytes, base64url-encoded (PKCE verifier, state,
// nonce).
func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// openBrowser starts the system's URL opener and does not wait for it; the
// URL is printed too, for machines without one.
func openBrowser(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}
