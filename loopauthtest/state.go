package loopauthtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The state file of WithStateFile. A file of another version fails the
// setup rather than being misread.
const (
	stateVersion  = 1
	maxStateBytes = 64 << 20
)

type savedState struct {
	Version int           `json:"version"`
	Keys    [][]byte      `json:"keys"` // PKCS #8 DER, current key first
	Grants  []savedGrant  `json:"grants"`
	Access  []savedAccess `json:"access_tokens"` // live ones only
}

type savedGrant struct {
	ClientID string    `json:"client_id"`
	Subject  string    `json:"sub"`
	Scope    string    `json:"scope"`
	OpenID   bool      `json:"openid"`
	AuthTime time.Time `json:"auth_time"`
	Current  string    `json:"current"`
	Revoked  bool      `json:"revoked"`
	// Refresh lists every refresh token of the grant, the ones rotation
	// replaced too, so that their reuse is still detected.
	Refresh []string `json:"refresh_tokens"`
}

type savedAccess struct {
	Token   string    `json:"token"`
	Grant   int       `json:"grant"` // index in Grants
	Scope   string    `json:"scope"`
	Expires time.Time `json:"expires"`
}

// persist writes the state file, if there is one, with everything the
// provider holds now. Writes are serialized and each takes its snapshot
// after the previous one, so the file never goes back in time.
func (p *Provider) persist() error {
	if p.cfg.stateFile == "" {
		return nil
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	st, err := p.snapshot()
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("loopauthtest: saving the state file: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("loopauthtest: saving the state file: %w", err)
	}
	return writeFileAtomic(p.cfg.stateFile, data)
}

// persistQuietly saves after a change on an error path (a replayed code or
// refresh token revokes a grant): the client gets its error either way,
// and every later save writes everything again.
func (p *Provider) persistQuietly() { _ = p.persist() }

// snapshot copies the state for saving. p.mu must be held.
func (p *Provider) snapshot() (*savedState, error) {
	st := &savedState{Version: stateVersion}
	for _, k := range p.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, der)
	}
	index := make(map[*grant]int)
	grantIndex := func(g *grant) int {
		i, ok := index[g]
		if !ok {
			i = len(st.Grants)
			index[g] = i
			st.Grants = append(st.Grants, savedGrant{
				ClientID: g.clientID, Subject: g.subject, Scope: g.scope, OpenID: g.openid,
				AuthTime: g.authTime, Current: g.current, Revoked: g.revoked,
			})
		}
		return i
	}
	for rt, g := range p.refresh {
		i := grantIndex(g)
		st.Grants[i].Refresh = append(st.Grants[i].Refresh, rt)
	}
	for t, a := range p.access {
		if p.live(a) {
			st.Access = append(st.Access, savedAccess{Token: t, Grant: grantIndex(a.grant), Scope: a.scope, Expires: a.expires})
		}
	}
	return st, nil
}

// writeFileAtomic replaces path with data, mode 0600, so that a reader
// (or a crash) never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".loopauthtest-state-*")
	if err != nil {
		return fmt.Errorf("loopauthtest: saving the state file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("loopauthtest: saving the state file: %w", err)
	}
	return nil
}

// loadState reads the state file, if one is set and it exists and is not
// empty, into the provider before it starts.
func (p *Provider) loadState() error {
	path := p.cfg.stateFile
	if path == "" {
		return nil
	}
	data, err := readCappedFile(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(bytes.TrimSpace(data)) == 0 {
		return nil // a new state, such as a fresh mktemp file
	}
	if err != nil {
		return fmt.Errorf("loopauthtest: reading the state file: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("loopauthtest: state file %s: %s: remove it to start afresh", path, fmt.Sprintf(format, args...))
	}
	var st savedState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return bad("not a loopauthtest state file (%v)", err)
	}
	if dec.More() {
		return bad("not a loopauthtest state file (data after the JSON object)")
	}
	if st.Version != stateVersion {
		return bad("version %d, want %d", st.Version, stateVersion)
	}
	if len(st.Keys) == 0 {
		return bad("no signing keys")
	}
	for i, der := range st.Keys {
		k, err := parseSavedKey(der)
		if err != nil {
			return bad("key %d: %v", i, err)
		}
		p.keys = append(p.keys, k)
	}
	if alg := p.keys[0].alg; alg != p.cfg.alg {
		return bad("the current key is %s, but the provider is set to sign with %s", alg, p.cfg.alg)
	}
	grants := make([]*grant, len(st.Grants))
	for i, sg := range st.Grants {
		g := &grant{
			clientID: sg.ClientID, subject: sg.Subject, scope: sg.Scope, openid: sg.OpenID,
			authTime: sg.AuthTime, current: sg.Current, revoked: sg.Revoked,
		}
		for _, rt := range sg.Refresh {
			if rt == "" {
				return bad("grant %d has an empty refresh token", i)
			}
			p.refresh[rt] = g
		}
		grants[i] = g
	}
	for _, sa := range st.Access {
		if sa.Token == "" || sa.Grant < 0 || sa.Grant >= len(grants) {
			return bad("an access token without a token or grant")
		}
		p.access[sa.Token] = &accessToken{grant: grants[sa.Grant], scope: sa.Scope, expires: sa.Expires}
	}
	return nil
}

func readCappedFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err == nil && len(data) > maxStateBytes {
		err = fmt.Errorf("larger than %d MiB", maxStateBytes>>20)
	}
	return data, err
}

// parseSavedKey reads a PKCS #8 key of one of the provider's algorithms.
func parseSavedKey(der []byte) (*signingKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return signingKeyFrom(AlgES256, k)
		}
	case *rsa.PrivateKey:
		if k.N.BitLen() >= 2048 {
			return signingKeyFrom(AlgRS256, k)
		}
	}
	return nil, fmt.Errorf("not a P-256 or RSA-2048 key")
}
