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
//	expiring, no refresh token          browser flow; the new set is saved
//	none (ErrNoToken) or unreadable     browser flow; the new set is saved
//	  (ErrInvalidTokenSet)
//	refresh failed otherwise            error (a network outage does not
//	  (network, server error)             open a browser)
//	store unusable (I/O, insecure)      error
//
// The skew is RefreshWithin (default one minute); a set without a known
// expiry is used until the provider rejects it. Concurrent calls on one
// client share one refresh or one sign-in. When the store also implements
// StoreLocker (FileStore does), the refresh or sign-in runs under its lock
// and the store is read again once the lock is held, so that several
// processes started together open one browser tab and perform one
// refresh: the others pick up the saved result. A rotated refresh token is
// saved before Token returns, and before the lock is released.
func (c *CLITokenClient) Token(ctx context.Context, store TokenStore) (*TokenSet, error) {
	ts, err := c.loadUsable(ctx, store)
	if ts != nil || err != nil {
		return ts, err
	}
	return c.obtainShared(ctx, store, nil)
}

// loadUsable returns the stored set when it can be used as is, nil (and
// no error) when a refresh or sign-in is needed, or an error when the
// store cannot be used.
func (c *CLITokenClient) loadUsable(ctx context.Context, store TokenStore) (*TokenSet, error) {
	ts, err := store.Load(ctx)
	switch {
	case errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalidTokenSet):
		return nil, nil
	case err != nil:
		return nil, errorf("loopauth: reading the token store: %w", err)
	case !c.belongsHere(ts):
		return nil, nil
	case c.fresh(ts):
		return ts, nil
	}
	return nil, nil
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
	return (c.issuer == "" || cl.Issuer == c.issuer) && checkAudience(cl, c.clientID) == nil
}

// flight is one refresh or sign-in that concurrent callers share.
type flight struct {
	done chan struct{}
	ts   *TokenSet
	err  error
}

// obtainShared runs obtain once for all concurrent callers of this client.
// stale, when set, is a set the caller saw rejected (a 401): it is
// refreshed even if it looks valid.
func (c *CLITokenClient) obtainShared(ctx context.Context, store TokenStore, stale *TokenSet) (*TokenSet, error) {
	c.flightMu.Lock()
	if f := c.flight; f != nil {
		c.flightMu.Unlock()
		select {
		case <-f.done:
			return f.ts, f.err
		case <-ctx.Done():
			return nil, errorf("loopauth: waiting for a token: %w", ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flight = f
	c.flightMu.Unlock()

	f.ts, f.err = c.obtain(ctx, store, stale)
	c.flightMu.Lock()
	c.flight = nil
	c.flightMu.Unlock()
	close(f.done)
	return f.ts, f.err
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
	prev, err := store.Load(ctx)
	switch {
	case errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalidTokenSet):
		prev = nil
	case err != nil:
		return nil, errorf("loopauth: reading the token store: %w", err)
	case !c.belongsHere(prev):
		prev = nil
	case stale != nil && prev.accessToken != stale.accessToken:
		return prev, nil // someone else already replaced the rejected token
	case stale == nil && c.fresh(prev):
		return prev, nil
	}
	if prev != nil && prev.refreshToken != "" {
		next, err := c.refresh(ctx, prev.refreshToken, prev)
		switch {
		case err == nil:
			return c.save(ctx, store, next, "refreshed")
		case !isInvalidGrant(err):
			return nil, err
		}
		c.logger.Debug("loopauth: the refresh token was rejected; signing in again")
	}
	next, err := c.RunAuthorizationFlow(ctx)
	if err != nil {
		return nil, err
	}
	return c.save(ctx, store, next, "signed in")
}

// save stores a new set. After a refresh a failure matters: the provider
// may already have invalidated the old refresh token (rotation), so the
// error says the next command may have to sign in again.
// The set itself still reaches the OnTokenSetChange hook.
func (c *CLITokenClient) save(ctx context.Context, store TokenStore, ts *TokenSet, what string) (*TokenSet, error) {
	if err := store.Save(ctx, ts); err != nil {
		return nil, errorf("loopauth: %s, but saving the new tokens failed (the next command may have to sign in again): %w", what, err)
	}
	return ts, nil
}

// isInvalidGrant reports whether a refresh failed because the grant is
// gone (RFC 6749 §5.2 invalid_grant): only a new sign-in helps.
func isInvalidGrant(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) && pe.ErrorCode == "invalid_grant"
}
