// Package loopauth gets OAuth 2.0 tokens for command-line programs with the
// authorization-code flow, PKCE and a loopback redirect (RFC 6749, RFC 7636,
// RFC 8252): it opens the user's browser at the provider's authorization
// page, receives the redirect on a short-lived server bound to 127.0.0.1,
// exchanges the code for tokens and returns them. It uses the Go standard
// library only.
//
// # Quick start
//
//	client, err := loopauth.NewBuilder().
//		ClientID("my-client-id").
//		AuthURL("https://provider.example.com/authorize").
//		TokenURL("https://provider.example.com/token").
//		AddScopes(loopauth.ScopeEmail, loopauth.ScopeOfflineAccess).
//		Build()
//	if err != nil {
//		log.Fatal(err) // every configuration problem, each naming the method to fix
//	}
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
//	defer stop()
//	tokens, err := client.RunAuthorizationFlow(ctx)
//
// With an OpenID provider, start from its discovery document; the ID token
// is then required and verified (signature against the provider's keys,
// then iss, aud, azp, exp, iat, nbf, nonce, sub and at_hash):
//
//	cfg, err := loopauth.FetchOpenIDConfiguration(ctx, "https://accounts.example.com")
//	client, err := loopauth.FromOpenIDConfiguration(cfg).
//		ClientID("my-client-id").
//		WithOpenIDConfigurationJWKSValidator(cfg).
//		AddScopes(loopauth.ScopeEmail).
//		Build()
//	tokens, err := client.RunAuthorizationFlow(ctx)
//	fmt.Println(tokens.IDToken().Claims().Subject)
//
// A CLI keeps its tokens between runs in a TokenStore and calls Token
// before each command: it returns the stored set, refreshes it when it
// expires soon (saving the rotated refresh token), or signs in. Concurrent
// calls share one refresh; with a FileStore, processes started together
// share one sign-in through the store's lock file. Transport and
// AuthorizedHTTPClient attach the token to requests, refresh it before
// expiry, retry once after a 401 and never send it to another host:
//
//	store := loopauth.NewFileStore(filepath.Join(configDir, "tokens.json"))
//	api := client.AuthorizedHTTPClient(store)
//	resp, err := api.Get("https://api.example.com/v1/me")
//
// The commands around the login: a client built with NonInteractive never
// opens a browser (Token returns an error matching ErrLoginRequired, saying
// why, where a sign-in would be needed), for scripts and CI; Logout revokes
// the stored refresh token (RFC 7009) and clears the store; and FromIssuer
// starts from the issuer alone, fetching the discovery document only when a
// call needs the provider, so that Token with a fresh stored set makes no
// request at all. HTTPClient gives every call to the provider your proxy or
// private CA; IssuerTemplate with EntraIssuer checks the ID tokens of
// Microsoft Entra's multi-tenant endpoints.
//
// Register http://127.0.0.1/callback (any port) as the redirect URI with
// the provider; use RequirePort when the provider insists on a fixed port.
// Later, refresh with [CLITokenClient.Refresh] or
// [CLITokenClient.RefreshIfExpiring]. The package loopauthtest provides an
// in-process provider for tests and demos.
//
// # What a flow does
//
//  1. Makes a fresh PKCE verifier (S256 only) and state, 256 bits each
//     from crypto/rand.
//  2. Binds 127.0.0.1 (never a wildcard address) on a random port, or the
//     port of PortHint or RequirePort, and serves http://127.0.0.1:PORT/callback.
//  3. Builds the authorization URL, calls the OnServerReady and OnURL hooks,
//     and opens the browser in the background, then prints the short URL
//     http://127.0.0.1:PORT/ (which redirects to the authorization URL) to
//     Stderr. Where a browser opened here cannot reach the user (SSH, a
//     container, no display; see Headless), or when the browser cannot be
//     opened, it prints how to sign in from elsewhere instead: the short
//     URL, the ssh -L command for the port, and paste-back (PasteFrom).
//     OnProgress receives each step.
//  4. Waits for the one authorization response that carries the right
//     state, from the callback server or pasted, until the context is
//     cancelled or Timeout (default 5 minutes) passes.
//  5. Checks the callback's RFC 9207 iss parameter when the issuer is
//     known, exchanges the code, verifies the ID token in OpenID mode,
//     answers the callback with a 303 to the fixed path /done (so the code
//     and state leave the address bar and the history), serves the success
//     or error page there once, closes the server and returns. A browser
//     that does not come back for the page within 2 seconds finds the port
//     closed.
//
// # Security
//
// The library verifies:
//   - the callback's Host header (DNS rebinding), method, exact path, Fetch
//     Metadata (only a top-level navigation) and state (constant time);
//     requests that fail get a 4xx page and do not end the flow, however
//     many there are, so another program or a web page that finds the port
//     cannot cancel or hijack a login (a flow that times out says how many
//     were refused); connections that send nothing or stall cannot delay
//     the browser's request;
//   - that only one request with the right state is processed, and that its
//     code and error parameters are unambiguous and well-formed; the port is
//     closed as soon as that request arrives (RFC 8252 §8.3);
//   - token responses: size-capped (1 MiB, after decompression), strict JSON
//     (no duplicate or case-variant members), Bearer tokens only, printable
//     ASCII tokens, bounded expires_in;
//   - in OpenID mode (OpenID Connect Core §3.1.3.7), the ID token: a compact
//     JWS parsed strictly (exact base64url, no crit, b64, zip or nested
//     tokens), an allowlisted alg (RS256/384/512, PS256/384/512,
//     ES256/384/512, EdDSA; never none or HS*) that must fit the key (key
//     type, curve and the JWK's own alg), keys found only in the provider's
//     JWKS (never from jwk, jku, x5u or x5c headers), RSA keys of
//     2048-8192 bits, EC points on their curve; signature first, then exact
//     iss, aud containing the client ID, azp, exp/iat/nbf with 60 s of
//     leeway, the nonce in constant time, sub and at_hash. A refreshed ID
//     token must name the same issuer, subject and audience (§12.2);
//   - discovery documents: the issuer byte for byte (the one tolerance, a
//     bare origin's trailing slash, is documented on
//     FetchOpenIDConfiguration), https endpoints, at most three redirects
//     and never a downgrade; the advertised algorithms narrow the allowlist
//     and never widen it.
//
// A RemoteJWKSValidator caches the key set within the provider's
// Cache-Control max-age (5 minutes to 24 hours), fetches it again for an
// unknown kid at most once a minute, and keeps its keys through an outage.
//
// It never follows redirects from the token endpoint (Go would resend the
// code and verifier), never passes a URL through a shell, opens only https
// URLs (or http to loopback), installs no signal handler, and never puts a
// token, code, verifier, state or client secret in an error, a log line or
// fmt output: TokenSet prints "[redacted]" in their place.
//
// The default opener honours $BROWSER: a list of commands separated by ':'
// (';' on Windows), each split into words as a shell would, with quotes
// respected and nothing expanded, and run directly, never through a shell.
// A "%s" word (or "--option=%s") becomes the URL, which is otherwise
// appended; the first command that starts is used. Without one it runs the
// platform's launcher (xdg-open, open, rundll32; under WSL the Windows
// browser through rundll32.exe).
//
// Callback pages are self-contained (no script, font, image or link of any
// kind) and are sent with Cache-Control: no-store, Referrer-Policy:
// no-referrer, X-Content-Type-Options: nosniff and a Content-Security-Policy
// of default-src 'none'. Provider text on error pages is escaped.
//
// # HTTPS callbacks
//
// Some providers accept only https redirect URIs, even for loopback.
// UseHTTPSWith serves the callback with a certificate the browser trusts,
// typically from EnsureLocalhost, which runs the user's mkcert (found on
// PATH only, with a timeout and no shell) and checks that its authority is
// installed; SetupGuideManaged tells users how to install it once. UseHTTPS
// serves a throwaway self-signed certificate, for development. This package
// never installs anything into a trust store.
//
// FileStore writes 0600 files in a 0700 directory by write-temp, fsync,
// rename and fsync of the directory, so a crash leaves the old or the new
// set, never a torn file; it refuses a token file that others can read or
// that another user owns, and a directory that others can write to, and
// never follows a symbolic link at the file's own name. Its cross-process
// lock is the operating system's (flock, LockFileEx), which no waiter can
// take from a live holder and which ends when the holder does.
//
// Left to the caller: deciding what the tokens mean to its own backend.
//
// # Limits
//
// Untrusted input is bounded. The limits are:
//
//	token endpoint response       1 MiB (after gzip)
//	JSON nesting                  32 levels
//	callback request headers      64 KiB
//	callback query                16 KiB, 16 parameters
//	authorization code            8 KiB
//	error / error_description     64 B / 512 B (longer text is cut)
//	callback connections          256 open; a newcomer closes the one idle longest
//	callback first byte           2 s
//	callback header read          5 s; request read 10 s
//	refused callback requests     no limit, never end a flow; 8 logged, then a count a minute
//	token request                 30 s (TLS handshake 10 s, headers 15 s)
//	saving a new token set        15 s, even after the caller's context ends
//	expires_in                    0 to 10 years
//	compact JWT                   64 KiB (header 8 KiB, kid 256 B, 32 audiences)
//	discovery document            512 KiB, 256 entries per list, 3 redirects
//	JWKS document                 512 KiB, 64 keys
//
// # Errors
//
// Conditions are sentinels, tested with errors.Is: ErrTimeout,
// ErrStateMismatch, ErrCallbackMalformed, ErrPortInUse, ErrNoRefreshToken,
// ErrInvalidConfig, ErrInvalidTokenResponse and others. Every ID-token
// failure matches ErrInvalidIDToken and its own sentinel (ErrNoIDToken,
// ErrIDTokenExpired, ErrInvalidIssuer, ErrInvalidAudience,
// ErrNonceMismatch, ErrInvalidSignature, ...). A refusal from the provider
// is a *ProviderError, read with errors.As. A cancelled flow matches
// context.Canceled.
package loopauth
