// Jwks_demo shows how loopauth checks ID-token signatures against a JSON
// Web Key Set (JWKS), offline. It is the Go port of the Rust crate's
// jwks_demo example.
//
//	go run ./examples/jwks_demo
//
// It starts two in-process providers of package loopauthtest and signs in
// to the first one unattended (the provider's own user agent plays the
// browser), twice:
//
//  1. with a RemoteJWKSValidator reading the provider's own JWKS: the
//     ID token verifies and the demo prints the verified subject;
//  2. with a validator reading the OTHER provider's JWKS: the flow fails,
//     and the demo prints which check refused the token.
//
// It then verifies a token by hand (ParseJSONWebKeySet and
// JSONWebKeySet.Verify on the JWKS fetched with net/http), shows that a
// token with a swapped payload fails, and has the provider rotate its key:
// the parsed set no longer knows the new kid, while the RemoteJWKSValidator
// fetches the JWKS again and verifies. No token is ever printed.
//
// Flags: none. Environment variables: none.
//
// Exit status: 0 when every step behaves as described, 1 otherwise, 2 on
// arguments, 130 when cancelled with Ctrl+C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/loopauth/loopauth"
	"github.com/loopauth/loopauth/loopauthtest"
)

const clientID = "loopauth-jwks-demo"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: go run ./examples/jwks_demo (no flags, no environment variables)")
		return 2
	}
	p, err := loopauthtest.StartProvider(loopauthtest.WithUser(loopauthtest.User{Subject: "ada-1815"}))
	if err != nil {
		return fail(stderr, err)
	}
	defer p.Close()
	other, err := loopauthtest.StartProvider()
	if err != nil {
		return fail(stderr, err)
	}
	defer other.Close()
	// Key IDs are public; they are shortened here only to fit the line.
	fmt.Fprintf(stdout, "Provider at %s signs with key %.8s…; another provider runs at %s.\n", p.Issuer(), p.KeyID(), other.Issuer())

	fmt.Fprintln(stdout, "\n1. Sign in, checking the ID token against the provider's own JWKS")
	own := loopauth.NewRemoteJWKSValidator(p.JWKSURL(), clientID)
	ts, err := signIn(ctx, p, own, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "   ok: signature verified; subject %q\n", ts.IDToken().Claims().Subject)

	fmt.Fprintln(stdout, "\n2. Sign in again, checking against the OTHER provider's JWKS")
	switch _, err := signIn(ctx, p, loopauth.NewRemoteJWKSValidator(other.JWKSURL(), clientID), stderr); {
	case errors.Is(err, loopauth.ErrNoUsableKey):
		fmt.Fprintln(stdout, "   refused: no key in that set has the token's kid (ErrNoUsableKey)")
	case errors.Is(err, loopauth.ErrInvalidSignature):
		fmt.Fprintln(stdout, "   refused: the signature does not verify with that set (ErrInvalidSignature)")
	case err == nil:
		return fail(stderr, errors.New("a token signed with another provider's key was accepted"))
	default:
		return fail(stderr, err)
	}

	fmt.Fprintln(stdout, "\n3. Verify by hand: GET the JWKS, ParseJSONWebKeySet, JSONWebKeySet.Verify")
	set, err := fetchJWKS(ctx, p.JWKSURL())
	if err != nil {
		return fail(stderr, err)
	}
	now := time.Now()
	claims := map[string]any{"iss": p.Issuer(), "aud": clientID, "sub": "ada-1815", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	token := p.SignIDToken(claims)
	payload, err := set.Verify(token)
	if err != nil {
		return fail(stderr, err)
	}
	var got struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &got); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "   a token the provider signed: signature valid, payload sub %q\n", got.Sub)
	fmt.Fprintln(stdout, "   (Verify checks the signature only; iss, aud, exp and nonce are the caller's job)")
	forged := swapPayload(token, p.SignIDToken(map[string]any{"sub": "mallory"}))
	if _, err := set.Verify(forged); !errors.Is(err, loopauth.ErrInvalidSignature) {
		return fail(stderr, fmt.Errorf("a token with a swapped payload: got %v, want ErrInvalidSignature", err))
	}
	fmt.Fprintln(stdout, "   the same token with another payload (sub \"mallory\"): the signature does not verify (ErrInvalidSignature)")

	fmt.Fprintf(stdout, "\n4. The provider rotates its signing key (new kid %.8s…)\n", p.RotateKey())
	rotated := p.SignIDToken(claims)
	if _, err := set.Verify(rotated); !errors.Is(err, loopauth.ErrNoUsableKey) {
		return fail(stderr, fmt.Errorf("the parsed set and a token with a new kid: got %v, want ErrNoUsableKey", err))
	}
	fmt.Fprintln(stdout, "   the set parsed in step 3 is a snapshot: it has no key with the new kid (ErrNoUsableKey)")
	if err := own.Validate(ctx, rotated); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, "   the RemoteJWKSValidator of step 1 fetched the JWKS again for the unknown kid: verified")
	return 0
}

// fetchJWKS downloads and parses a key set. A loopauth client does this
// itself (RemoteJWKSValidator); this is for programs that verify tokens
// on their own.
func fetchJWKS(ctx context.Context, url string) (*loopauth.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	const maxJWKS = 1 << 20 // a key set is a few KiB
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKS {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", url, maxJWKS)
	}
	return loopauth.ParseJSONWebKeySet(data)
}

// swapPayload puts the payload of b into a, keeping a's header and
// signature: a forgery the signature check must catch.
func swapPayload(a, b string) string {
	ap, bp := strings.Split(a, "."), strings.Split(b, ".")
	return ap[0] + "." + bp[1] + "." + ap[2]
}

// signIn runs one unattended OpenID flow against p, with v checking the
// ID token's signature.
func signIn(ctx context.Context, p *loopauthtest.Provider, v loopauth.JWKSValidator, stderr io.Writer) (*loopauth.TokenSet, error) {
	client, err := loopauth.NewBuilder().
		ClientID(clientID).
		AuthURL(p.AuthURL()).
		TokenURL(p.TokenURL()).
		WithOpenIDScope().
		Issuer(p.Issuer()).
		JWKSValidator(v).
		BrowserOpener(p.Browser()).
		Stderr(stderr).
		Build()
	if err != nil {
		return nil, err
	}
	return client.RunAuthorizationFlow(ctx)
}

// fail reports err and returns the exit status: 130 when the user
// cancelled, 1 otherwise. loopauth errors never contain a secret.
func fail(stderr io.Writer, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "jwks_demo: cancelled")
		return 130
	}
	fmt.Fprintf(stderr, "jwks_demo: %v\n", err)
	return 1
}
