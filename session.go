package loopauth

import (
	"context"
	"errors"
	"time"
)

// Token returns a token set to use now, signing in only when it must: the
// one call a CLI makes before each command. The decision table:
//
//	stored set                         Token
//	-------------------------------    ---------------------------------------
//	valid for longer than the skew      returned as is, nothing written
//	expiring, with a refresh token      refreshed; the new set is saved
//	refresh answered invalid_grant      browser flow; the new set is saved
//	  (GitHub: bad_refresh_token)
//	expiring, no refresh token          browser flow; the new set is saved
//	none (ErrNoToken) or unreadable     browser flow; the new set is saved
//	  (ErrInvalidTokenSet)
//	issued to another client: its ID   browser flow; the new set is saved
//	  token names another issuer or
//	  audience, or (OpenID mode) it
//	  has no ID token
//	refresh failed otherwise            error (a network outage does not
//	  (network, server error)             open a browser)
//	store unusable (I/O, a file or      error
//	  directory others could use)
//
// With NonInteractive, every row that ends in a browser flow returns an
// error matching ErrLoginRequired instead, saying why.
//
// The skew is RefreshWithin (default one minute); a set without a known
// expiry is used until the provider rejects it, and a set obtained less
// than 10 seconds ago is used until it has actually expired, so that a
// provider issuing very short-lived tokens does not turn every call into a
// refresh. Concurrent calls on one
// client share one refresh or one sign-in. When the store also implements
// StoreLocker (FileStore does), the refresh or sign-in runs under its lock
// and the store is read again once the lock is held, so that several
// processes started together open one browser tab and perform one
// refresh: the others pick up the saved result. A rotated refresh token is
// saved before the lock is released, and before the last call waiting for
// it returns.
//
// Each call returns when its own ctx is done, with an error wrapping
// ctx.Err(), even while the shared refresh or sign-in goes on for the
// other callers; the work is cancelled once no call waits for it, and the
// last call to leave returns only when it has ended. Once the provider has
// answered, the new set is saved whatever ctx does, within 15 seconds:
// the old refresh token may be spent already. A panic in the store or the
// OnTokenSetChange hook is raised again in the call that started the work
// (or, if it has returned, in one other); the other calls get an error,
// and later calls start afresh.
func (c *CLITokenClient) Token(ctx context.Context, store TokenStore) (*TokenSet, error) {
	ts, err := c.loadStored(ctx, store)
	if err != nil || ts != nil && c.fresh(ts) {
		return ts, err
	}
	return c.obtainShared(ctx, store, nil)
}

// loadStored returns the stored set, nil (and no error) when the store
// holds none this client can use (nothing, an unreadable set, another
// client's), or an error when the store itself fails.
func (c *CLITokenClient) loadStored(ctx context.Context, store TokenStore) (*TokenSet, error) {
	ts, err := store.Load(ctx)
	switch {
	case errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalidTokenSet):
		return nil, nil
	case err != nil:
		return nil, errorf("loopauth: reading the token store: %w", err)
	case !c.belongsHere(ts):
		return nil, nil
	}
	return ts, nil
}

// minRefreshInterval keeps a provider that issues very short-lived tokens
// (expires_in of a few seconds, shorter than RefreshWithin) from turning
// every Token call into a refresh: a set this young is used until it has
// actually expired.
const minRefreshInterval = 10 * time.Second

// fresh reports whether ts can be used without a refresh: no known expiry,
// more than RefreshWithin left, or obtained less than minRefreshInterval
// ago and not yet expired.
func (c *CLITokenClient) fresh(ts *TokenSet) bool {
	if ts.expiresAt.IsZero() {
		return true
	}
	now := c.now()
	left := ts.expiresAt.Sub(now)
	return left > c.refreshWithin || left > 0 && !ts.obtained.IsZero() && now.Sub(ts.obtained) < minRefreshInterval
}

// belongsHere reports whether a stored set may have been issued to this
// client: a stored ID token must name this issuer and audience.
// A set without an ID token cannot tell, and is accepted.
func (c *CLITokenClient) belongsHere(ts *TokenSet) bool {
	if ts.idToken == nil {
		return !c.openID
	}
	cl := ts.idToken.claims
	iss, err := c.issuerFor(cl)
	return err == nil && (iss == "" || cl.Issuer == iss) && checkAudience(cl, c.clientID) == nil
}

// flight is one refresh or sign-in that concurrent callers share. It
// runs in its own goroutine under its own context, so that each caller
// can leave when its own context ends; the last one to leave cancels it
// and waits for the goroutine to end.
type flight struct {
	done   chan struct{} // closed when the goroutine is about to return
	cancel context.CancelFunc

	// Set before done is closed.
	ts         *TokenSet
	err        error
	panicked   bool // obtain panicked (or called runtime.Goexit)
	panicValue any

	// Guarded by CLITokenClient.flightMu.
	waiters     int
	abandoned   bool // every caller left and the work was cancelled
	starterLeft bool // the caller that started it left before the end
	panicTaken  bool // a caller has re-panicked with panicValue
}

// errFlightPanicked is what the callers who do not re-panic get.
var errFlightPanicked = errors.New("loopauth: getting a token failed: a TokenStore or an OnTokenSetChange hook panicked during the shared refresh or sign-in (the panic itself was raised in another call)")

// obtainShared runs obtain once for all concurrent callers of this client.
// stale, when set, is a set the caller saw rejected (a 401): it is
// refreshed even if it looks valid.
//
// Each caller returns when the work ends or its own ctx does. A panic in
// obtain (a store, a hook) is raised again in the caller that started the
// work, or, if that one has left, in the first other caller to see it;
// the rest get errFlightPanicked.
func (c *CLITokenClient) obtainShared(ctx context.Context, store TokenStore, stale *TokenSet) (*TokenSet, error) {
	f, started, err := c.joinFlight(ctx, store, stale)
	if err != nil {
		return nil, err
	}
	ended := false
	select {
	case <-f.done:
		ended = true
	case <-ctx.Done():
		select { // a result that is there already wins
		case <-f.done:
			ended = true
		default:
		}
	}
	c.flightMu.Lock()
	f.waiters--
	last := !ended && f.waiters == 0
	if last {
		// No one waits for the work any more: stop it.
		f.abandoned = true
		f.cancel()
	}
	if !ended && started {
		f.starterLeft = true
	}
	c.flightMu.Unlock()
	if last {
		// Wait for its goroutine, which ends promptly (a save in progress
		// is bounded by saveTimeout), so that none outlives this call.
		<-f.done
	}
	if (ended || last) && f.panicValue != nil && c.claimPanic(f, started) {
		panic(f.panicValue)
	}
	switch {
	case !ended:
		return nil, errorf("loopauth: waiting for a token: %w", ctx.Err())
	case f.panicked:
		return nil, errFlightPanicked
	}
	return f.ts, f.err
}

// joinFlight joins the work in progress, or starts it.
func (c *CLITokenClient) joinFlight(ctx context.Context, store TokenStore, stale *TokenSet) (f *flight, started bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, errorf("loopauth: waiting for a token: %w", err) // start nothing
	}
	c.flightMu.Lock()
	for c.flight != nil && c.flight.abandoned {
		// Cancelled, but perhaps still saving a rotated refresh token:
		// start afresh only once it has ended, so that two refreshes
		// never overlap.
		f := c.flight
		c.flightMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, errorf("loopauth: waiting for a token: %w", ctx.Err())
		}
		c.flightMu.Lock()
	}
	f = c.flight
	if f == nil {
		started = true
		// The work keeps the starter's values (trace IDs and the like)
		// but not its deadline or cancellation: it ends when no one
		// waits for it any more.
		work, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flight = f
		go c.runFlight(work, f, store, stale)
	}
	f.waiters++
	c.flightMu.Unlock()
	return f, started, nil
}

// runFlight runs obtain for f. Whatever happens, even a panic, it removes
// f from the client and releases the callers waiting for it.
func (c *CLITokenClient) runFlight(ctx context.Context, f *flight, store TokenStore, stale *TokenSet) {
	returned := false
	defer func() {
		if !returned {
			f.panicked = true
			f.panicValue = recover() // nil after runtime.Goexit
		}
		f.cancel()
		c.flightMu.Lock()
		if c.flight == f {
			c.flight = nil
		}
		c.flightMu.Unlock()
		close(f.done)
	}()
	f.ts, f.err = c.obtain(ctx, store, stale)
	returned = true
}

// claimPanic reports whether this caller is the one to raise f's panic
// again: the caller that started the work, or the first other caller to
// see the panic once that one has left.
func (c *CLITokenClient) claimPanic(f *flight, started bool) bool {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if f.panicTaken || !started && !f.starterLeft {
		return false
	}
	f.panicTaken = true
	return true
}

// obtain refreshes or signs in, under the store's lock when it has one.
func (c *CLITokenClient) obtain(ctx context.Context, store TokenStore, stale *TokenSet) (*TokenSet, error) {
	if l, ok := store.(StoreLocker); ok {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return nil, errorf("loopauth: locking the token store: %w", err)
		}
		defer unlock()
	}
	// Read again: another process may have refreshed or signed in while
	// this one waited for the lock.
	prev, err := c.loadStored(ctx, store)
	switch {
	case err != nil:
		return nil, err
	case prev == nil:
		// Nothing usable stored: sign in below.
	case stale != nil && prev.AccessToken() != stale.AccessToken():
		return prev, nil // someone else already replaced the rejected token
	case stale == nil && c.fresh(prev):
		return prev, nil
	}
	why := "no token set usable by this client is stored (none, unreadable, or issued by another issuer or to another client)"
	if prev != nil {
		why = "the stored access token has expired and there is no refresh token"
	}
	if prev != nil && prev.RefreshToken() != "" {
		next, err := c.refresh(ctx, prev.RefreshToken(), prev)
		switch {
		case err == nil:
			return c.save(ctx, store, next, "refreshed")
		case !isInvalidGrant(err):
			return nil, err
		case c.nonInteractive:
			return nil, errorf("%w: the provider refused the refresh token: %w", ErrLoginRequired, err)
		}
		c.logger.Debug("loopauth: the refresh token was rejected; signing in again")
	}
	if c.nonInteractive {
		return nil, errorf("%w: %s; sign in with the program's interactive login first", ErrLoginRequired, why)
	}
	next, err := c.RunAuthorizationFlow(ctx)
	if err != nil {
		return nil, err
	}
	return c.save(ctx, store, next, "signed in")
}

// saveTimeout bounds the work that follows a provider's token answer: the
// check of a refreshed ID token (refresh) and the Save after a refresh or
// sign-in. That work does not stop when the callers' context ends: the provider has answered,
// and may have rotated the refresh token, so the stored one is spent and
// dropping the new one would cost a sign-in, or the whole grant with a
// provider that detects reuse.
const saveTimeout = 15 * time.Second

// save stores a new set, under its own timeout (see saveTimeout). After a
// refresh a failure matters: the provider may already have invalidated the
// old refresh token (rotation), so the error says the next command may
// have to sign in again. The set itself still reaches the OnTokenSetChange
// hook.
func (c *CLITokenClient) save(ctx context.Context, store TokenStore, ts *TokenSet, what string) (*TokenSet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	if err := store.Save(ctx, ts); err != nil {
		return nil, errorf("loopauth: %s, but saving the new tokens failed (the next command may have to sign in again): %w", what, err)
	}
	return ts, nil
}

// isInvalidGrant reports whether a refresh failed because the grant is
// gone (RFC 6749 §5.2 invalid_grant; GitHub says bad_refresh_token): only
// a new sign-in helps.
func isInvalidGrant(err error) bool {
	pe, ok := errorAs[*ProviderError](err)
	return ok && (pe.ErrorCode == "invalid_grant" || pe.ErrorCode == "bad_refresh_token")
}
