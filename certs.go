package loopauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SetupGuide is the one-time setup for users who give the application
// certificate files themselves (TLSCertificateFromPEMFiles). Print it when
// loading them fails.
const SetupGuide = setupTitle + `This application uses HTTPS for its OAuth login callback. It needs a
locally-trusted certificate for localhost, 127.0.0.1 and ::1, which you
create once. Steps 1 and 2 are global and can be run from any directory.

` + setupMkcert + `
3. Generate a certificate:
     mkcert -cert-file localhost-cert.pem -key-file localhost-key.pem localhost 127.0.0.1 ::1
   This writes the certificate (safe to share) and its private key (keep it
   secure: only you should be able to read it) into the current directory.
   Generating several certificates is fine: all are signed by the same CA.

4. Give both files to the application as its documentation describes.

The files are reusable and not tied to the directory they were generated
in. The certificate is only valid for localhost, 127.0.0.1 and ::1.
`

// SetupGuideManaged is the one-time setup for users of an application that
// calls EnsureLocalhost, which generates the certificate itself. Print it
// when EnsureLocalhost returns ErrMkcertNotFound or ErrMkcertCANotInstalled.
const SetupGuideManaged = setupTitle + `This application uses HTTPS for its OAuth login callback. It needs a
locally-trusted certificate, which takes a one-time setup per machine. Both
commands below can be run from any directory; they are global operations.

` + setupMkcert + `
That's it; there is no step 3. The application generates its certificate
for localhost, 127.0.0.1 and ::1 automatically on its next run. If you have
already run mkcert -install (for example for another tool), only step 1 is
needed.
`

// The parts the two guides share.
const (
	setupTitle = `HTTPS Certificate Setup
=======================

`
	setupMkcert = `1. Install mkcert (https://github.com/FiloSottile/mkcert#installation)
     macOS: brew install mkcert
     Other platforms: see the link above

2. Create and trust a local certificate authority (may prompt for a password):
     mkcert -install
   This adds a root certificate to the system trust store so that browsers
   accept localhost certificates signed by it. It does not affect other
   machines or network traffic.
`
)

var (
	// ErrMkcertNotFound means EnsureLocalhost found no mkcert on PATH. A
	// mkcert in the current directory is never run, even when PATH lists
	// "." (such a hit also matches exec.ErrDot). Print SetupGuideManaged.
	ErrMkcertNotFound = errors.New("loopauth: mkcert is not installed (see https://github.com/FiloSottile/mkcert#installation)")

	// ErrMkcertCANotInstalled is matched by the *MkcertError returned when
	// mkcert produced a certificate that this system does not trust:
	// mkcert exits 0 even when "mkcert -install" was never run, and
	// browsers would then reject the callback. The user must run
	// "mkcert -install" (print SetupGuideManaged); this package never does,
	// since that changes the system trust store.
	ErrMkcertCANotInstalled = errors.New("loopauth: mkcert's local CA is not trusted by this system")

	// ErrInvalidCertificate means certificate or key data cannot serve the
	// loopback callback: PEM that is damaged, encrypted or holds not
	// exactly one private key, a key that does not match the certificate,
	// or a certificate that is expired, not yet valid, a CA, signed with
	// SHA-1, has an RSA key under 2048 bits or does not cover 127.0.0.1.
	// The error gives the reason and never quotes key material.
	ErrInvalidCertificate = errors.New("loopauth: unusable TLS certificate")

	// ErrUnsafeCertificatePath means EnsureLocalhost refused its directory
	// or a file in it: a symbolic link (never followed), something other
	// than a regular file or directory, or, on Unix, a directory that
	// other users may access or that belongs to another user (that error
	// is also a *FileModeError, for errors.As). The error names the path
	// and the fix.
	ErrUnsafeCertificatePath = errors.New("loopauth: unsafe certificate path")
)

// MkcertError means mkcert ran but gave no usable, trusted certificate.
// Matched with errors.As; Error says what to do.
type MkcertError struct {
	// Message is mkcert's standard error (control characters replaced,
	// at most 1 KiB) when it failed, otherwise the reason.
	Message string
	// TimedOut reports that mkcert was stopped at the deadline.
	TimedOut bool
	// CANotInstalled reports that the certificate does not chain to a
	// root this system trusts: run "mkcert -install" (SetupGuideManaged).
	// The error then also matches ErrMkcertCANotInstalled.
	CANotInstalled bool

	err error // cause, for errors.Is and errors.As
}

// Error describes the failure and the fix.
func (e *MkcertError) Error() string {
	msg, fix := "loopauth: mkcert failed", " (run mkcert yourself to see what is wrong)"
	switch {
	case e.CANotInstalled:
		msg = "loopauth: mkcert's local CA is not trusted by this system, so browsers would reject the certificate"
		fix = ` (run "mkcert -install" once to trust mkcert's local authority, then try again)`
	case e.TimedOut:
		msg = "loopauth: mkcert did not finish in time and was stopped"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg + fix
}

// Unwrap returns the cause: ErrMkcertCANotInstalled,
// context.DeadlineExceeded, an *exec.ExitError or an
// ErrInvalidCertificate error.
func (e *MkcertError) Unwrap() error { return e.err }

// TLSCertificate is a certificate chain and its private key, checked and
// ready to serve the HTTPS loopback callback (UseHTTPSWith).
type TLSCertificate struct {
	cert tls.Certificate // Leaf always set
}

// serverConfig returns a fresh TLS configuration for the callback server:
// TLS 1.2 or later, HTTP/1.1 only (the callback server does not speak
// HTTP/2), and no client certificate request.
func (c *TLSCertificate) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, c.serverConfig())
}

func (c *TLSCertificate) serverConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// usable reports whether c came from a constructor of this package (a
// zero TLSCertificate has no key to serve).
func (c *TLSCertificate) usable() bool {
	return c != nil && c.cert.Leaf != nil && c.cert.PrivateKey != nil && len(c.cert.Certificate) > 0
}

// Limits on certificate input. Real chains are 1-3 certificates of 1-2 KiB.
// RSA keys are held to minRSABits (jwk.go), as browsers require.
const (
	maxPEMFileBytes = 1 << 20 // each of the certificate and key files
	maxPEMBlocks    = 32      // in one PEM input, counted before decoding
	maxChainCerts   = 10
)

// Where EnsureLocalhost keeps its files and how it runs mkcert.
const (
	localhostCertFile    = "localhost-cert.pem"
	localhostKeyFile     = "localhost-key.pem"
	minRemainingValidity = 7 * 24 * time.Hour // regenerate before the browser sees an expired certificate
	mkcertTimeout        = 30 * time.Second   // generating a certificate takes well under a second
	mkcertWaitDelay      = time.Second        // after the kill, stop waiting for pipes a grandchild holds
	maxMkcertOutput      = 64 << 10           // per stream
	maxMkcertMessage     = 1 << 10            // of stderr, in MkcertError.Message
)

func invalidCert(format string, args ...any) error {
	return errorf("%w: "+format, append([]any{ErrInvalidCertificate}, args...)...)
}

// TLSCertificateFromPEM checks and loads a certificate chain and its key.
// certPEM holds the CERTIFICATE blocks, leaf first; keyPEM holds exactly
// one unencrypted private key (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE
// KEY" or SEC1 "EC PRIVATE KEY"). keyPEM may also hold the certificates
// and certPEM the key when both are the same combined file. The leaf must
// match the key, be valid now, cover 127.0.0.1, not be a CA, have an RSA
// key of at least 2048 bits if RSA, and not be signed with SHA-1 or MD5.
// Every failure wraps ErrInvalidCertificate.
func TLSCertificateFromPEM(certPEM, keyPEM []byte) (*TLSCertificate, error) {
	return certificateFromPEM(certPEM, keyPEM, time.Now())
}

func certificateFromPEM(certPEM, keyPEM []byte, now time.Time) (*TLSCertificate, error) {
	chain, err := checkPEMInput(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// Fixed reasons rather than the parser's text: no one has to
		// audit what an ASN.1 error might echo from a private key.
		if strings.Contains(err.Error(), "does not match") {
			return nil, invalidCert("the private key does not match the certificate")
		}
		return nil, invalidCert("the private key cannot be parsed (PKCS#8, PKCS#1 or SEC1 expected) or used with this certificate")
	}
	// Since Go 1.23 X509KeyPair sets Leaf, unless GODEBUG x509keypairleaf=0.
	cert.Leaf = chain[0]
	if err := checkLeaf(cert.Leaf, now); err != nil {
		return nil, err
	}
	return &TLSCertificate{cert: cert}, nil
}

// checkPEMInput counts and classifies the PEM blocks before anything is
// parsed as a key, so that a second key, an encrypted key or a stray block
// is refused instead of silently skipped, and returns the parsed chain.
func checkPEMInput(certPEM, keyPEM []byte) ([]*x509.Certificate, error) {
	certBlocks, err := pemBlocks(certPEM, "certificate")
	if err != nil {
		return nil, err
	}
	combined := bytes.Equal(certPEM, keyPEM)
	var chain []*x509.Certificate
	for _, b := range certBlocks {
		switch {
		case b.Type == "CERTIFICATE":
			if len(chain) == maxChainCerts {
				return nil, invalidCert("more than %d certificates in the chain", maxChainCerts)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, invalidCert("certificate %d of the chain: %v", len(chain)+1, err)
			}
			chain = append(chain, c)
		case combined && (isKeyBlock(b.Type) || b.Type == "EC PARAMETERS"):
			// Counted below, as key data.
		case isKeyBlock(b.Type) || strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, invalidCert("the certificate data holds a private key (%q block): pass the key separately and keep it private", b.Type)
		default:
			return nil, invalidCert("unexpected %q PEM block in the certificate data", b.Type)
		}
	}
	if len(chain) == 0 {
		return nil, invalidCert("no CERTIFICATE block in the certificate data")
	}
	keyBlocks, err := pemBlocks(keyPEM, "key")
	if err != nil {
		return nil, err
	}
	keys := 0
	for _, b := range keyBlocks {
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || isKeyBlock(b.Type) && strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED"):
			return nil, invalidCert("the private key is encrypted: decrypt it first (openssl pkey)")
		case isKeyBlock(b.Type):
			keys++
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, invalidCert("unsupported private key type %q (PKCS#8, PKCS#1 or SEC1 expected)", b.Type)
		case b.Type == "CERTIFICATE", b.Type == "EC PARAMETERS":
			// A combined file, or openssl ecparam output: not key material.
		default:
			return nil, invalidCert("unexpected %q PEM block in the key data", b.Type)
		}
	}
	switch {
	case keys == 0:
		return nil, invalidCert("no private key in the key data")
	case keys > 1:
		return nil, invalidCert("%d private keys in the key data; exactly one is allowed", keys)
	}
	return chain, nil
}

func isKeyBlock(typ string) bool {
	return typ == "PRIVATE KEY" || typ == "RSA PRIVATE KEY" || typ == "EC PRIVATE KEY"
}

// pemBlocks decodes every PEM block of data. pem.Decode skips text it
// cannot decode, so the "-----BEGIN" markers are counted first: a damaged
// block is an error, not a block silently missing from the chain.
func pemBlocks(data []byte, what string) ([]*pem.Block, error) {
	markers := bytes.Count(data, []byte("-----BEGIN"))
	if markers > maxPEMBlocks {
		return nil, invalidCert("more than %d PEM blocks in the %s data", maxPEMBlocks, what)
	}
	blocks := make([]*pem.Block, 0, markers)
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		blocks = append(blocks, b)
	}
	switch {
	case markers == 0:
		return nil, invalidCert("the %s data is not PEM", what)
	case len(blocks) != markers:
		return nil, invalidCert("the %s data holds a damaged PEM block", what)
	}
	return blocks, nil
}

// checkLeaf refuses a leaf that browsers or the callback cannot use, with
// the reason. IP 127.0.0.1 is required because the redirect URI uses it.
func checkLeaf(leaf *x509.Certificate, now time.Time) error {
	const day = "2006-01-02 15:04 MST"
	switch {
	case leaf.IsCA:
		return invalidCert("the certificate is a CA certificate, not a server certificate")
	case now.Before(leaf.NotBefore):
		return invalidCert("the certificate is not valid before %s (check the system clock)", leaf.NotBefore.UTC().Format(day))
	case now.After(leaf.NotAfter):
		return invalidCert("the certificate expired on %s", leaf.NotAfter.UTC().Format(day))
	}
	if leaf.VerifyHostname("127.0.0.1") != nil {
		return invalidCert("the certificate does not cover IP address 127.0.0.1, the callback address")
	}
	if pub, ok := leaf.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		return invalidCert("the certificate has a %d-bit RSA key; at least %d bits are needed", pub.N.BitLen(), minRSABits)
	}
	switch leaf.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return invalidCert("the certificate is signed with %v, which browsers reject", leaf.SignatureAlgorithm)
	}
	if eku := leaf.ExtKeyUsage; len(eku) > 0 && !slices.Contains(eku, x509.ExtKeyUsageServerAuth) && !slices.Contains(eku, x509.ExtKeyUsageAny) {
		return invalidCert("the certificate's extended key usage does not allow TLS servers")
	}
	return nil
}

// TLSCertificateFromPEMFiles reads the certificate and key files (at most
// 1 MiB each; symbolic links are followed, as the paths are the caller's
// choice) and loads them with TLSCertificateFromPEM.
func TLSCertificateFromPEMFiles(certPath, keyPath string) (*TLSCertificate, error) {
	return loadPEMFiles(certPath, keyPath, true, time.Now())
}

// loadPEMFiles reads the two files with readPEMFile and checks them at now
// with certificateFromPEM.
func loadPEMFiles(certPath, keyPath string, follow bool, now time.Time) (*TLSCertificate, error) {
	certPEM, err := readPEMFile(certPath, follow)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEMFile(keyPath, follow)
	if err != nil {
		return nil, err
	}
	return certificateFromPEM(certPEM, keyPEM, now)
}

// readPEMFile reads a regular file of at most maxPEMFileBytes. With follow
// false a symbolic link is refused, also one swapped in after Lstat.
// Checking the type before open keeps a FIFO from blocking the read.
func readPEMFile(path string, follow bool) ([]byte, error) {
	stat, flags := os.Lstat, os.O_RDONLY|openNoFollow
	if follow {
		stat, flags = os.Stat, os.O_RDONLY
	}
	fi, err := stat(path)
	if err != nil {
		return nil, errorf("loopauth: reading %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errorf("%w: %q is not a regular file (mode %v): remove it or use another path", ErrUnsafeCertificatePath, path, fi.Mode())
	}
	if fi.Size() > maxPEMFileBytes {
		return nil, invalidCert("%q is larger than %d bytes", path, maxPEMFileBytes)
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, errorf("loopauth: reading %q: %w", path, err)
	}
	defer f.Close()
	if got, err := f.Stat(); err != nil || !os.SameFile(fi, got) {
		return nil, errorf("%w: %q changed while being opened", ErrUnsafeCertificatePath, path)
	}
	data, err := readCapped(f, maxPEMFileBytes)
	switch {
	case errors.Is(err, ErrResponseTooLarge):
		return nil, invalidCert("%q is larger than %d bytes", path, maxPEMFileBytes)
	case err != nil:
		return nil, errorf("loopauth: reading %q: %w", path, err)
	}
	return data, nil
}

// EnsureLocalhost returns the mkcert certificate for localhost, 127.0.0.1
// and ::1 kept in dir (localhost-cert.pem and localhost-key.pem),
// generating it with mkcert when the files are missing, unusable, expire
// within 7 days, or the key file is accessible by other users. dir is
// created with mode 0700 if needed; on Unix an existing dir must belong to
// the user the process runs as and not be accessible by others (a
// *FileModeError matching ErrUnsafeCertificatePath), and dir and the files
// must not be symbolic links (ErrUnsafeCertificatePath).
//
// mkcert is looked up on PATH only and run without a shell, each of its two
// runs (generate, then -CAROOT) for at most 30 seconds (then it is killed,
// on Unix with every process it started), in the process's
// environment (so CAROOT and TRUST_STORES apply as
// they do for mkcert itself). It never runs "mkcert -install" and never
// reads the CA's private key. Errors: ErrMkcertNotFound when mkcert is not
// on PATH; a *MkcertError when it fails, times out or writes unusable files,
// and one matching ErrMkcertCANotInstalled when its CA is not trusted by the
// system (the files are then not kept). Both call for SetupGuideManaged.
//
// On Windows the directory and files get the ACL they inherit from the
// parent directory, such as the user's profile. Reuse does not run mkcert, so it does not notice a CA removed from the
// trust store later. Concurrent calls for the same dir are safe but may
// each run mkcert.
func EnsureLocalhost(dir string) (*TLSCertificate, error) {
	return ensureLocalhost(dir, nil, mkcertTimeout)
}

// ensureLocalhost is EnsureLocalhost with the trust roots (nil: the
// system's) and the mkcert timeout as parameters, for tests.
func ensureLocalhost(dir string, roots *x509.CertPool, timeout time.Duration) (*TLSCertificate, error) {
	if dir == "" {
		return nil, errorf("%w: EnsureLocalhost needs a directory", ErrInvalidConfig)
	}
	if err := ensurePrivateDir(dir); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, localhostCertFile), filepath.Join(dir, localhostKeyFile)
	c, err := loadReusable(certPath, keyPath, time.Now())
	if c != nil || err != nil {
		return c, err
	}
	return generateLocalhost(dir, roots, timeout)
}

// ensurePrivateDir creates dir with mode 0700 (MkdirAll applies the mode at
// creation, and the umask can only remove bits, so it is never more open)
// and refuses a symbolic link or, on Unix, a directory others may use: one
// that belongs to another user, or that its group or others may access.
// Reading is refused too, not only writing: the key must stay private.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errorf("loopauth: creating the certificate directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return errorf("loopauth: checking the certificate directory: %w", err)
	}
	m := fi.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return errorf("%w: certificate directory %q is a symbolic link, which is never followed: give the real directory", ErrUnsafeCertificatePath, dir)
	case !m.IsDir():
		return errorf("%w: %q is not a directory (mode %v)", ErrUnsafeCertificatePath, dir, m)
	}
	unsafe := func(format string, args ...any) error {
		return &unsafeDirError{&FileModeError{Path: dir, Mode: m}, fmt.Sprintf("%s: certificate directory %q "+format, append([]any{ErrUnsafeCertificatePath, dir}, args...)...)}
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return unsafe("belongs to another user (uid %d), who could replace the certificate or read its key: remove it, so that it is created again as yours, or have its owner give it to you (chown -R)", uid)
	}
	switch perm := m.Perm(); {
	case modeBitsApply && perm&0o022 != 0:
		return unsafe("may be written by other users (mode %v), who could replace the certificate or its key: use a directory only you can write, such as a new subdirectory, which is created with mode 0700; if the directory is yours alone, run chmod 700 %q", m, dir)
	case modeBitsApply && perm&0o077 != 0:
		return unsafe("may be accessed by other users (mode %v): run chmod 700 %q or use another directory", m, dir)
	}
	return nil
}

// unsafeDirError refuses a certificate directory that others may use. It
// matches ErrUnsafeCertificatePath, and errors.As finds the *FileModeError
// with the path and mode; the message is about a directory, not about a
// token file.
type unsafeDirError struct {
	mode *FileModeError
	msg  string
}

func (e *unsafeDirError) Error() string { return e.msg }

func (e *unsafeDirError) Unwrap() []error { return []error{ErrUnsafeCertificatePath, e.mode} }

// loadReusable returns the certificate in the files if it may be reused,
// nil and no error if it must be regenerated, and an error only for a
// path it refuses. A key file others may read (on Unix) is regenerated:
// that key may have leaked.
func loadReusable(certPath, keyPath string, now time.Time) (*TLSCertificate, error) {
	c, err := loadPEMFiles(certPath, keyPath, false, now)
	if errors.Is(err, ErrUnsafeCertificatePath) {
		return nil, err
	}
	if err != nil || c.cert.Leaf.NotAfter.Sub(now) < minRemainingValidity {
		return nil, nil
	}
	if modeBitsApply {
		fi, err := os.Lstat(keyPath)
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			return nil, nil
		}
	}
	return c, nil
}

// generateLocalhost runs mkcert into a fresh private directory inside dir,
// checks the result, and only then renames the files into place: the key
// is never readable by others, and an unusable or untrusted certificate
// is never left for the next run to reuse.
func generateLocalhost(dir string, roots *x509.CertPool, timeout time.Duration) (*TLSCertificate, error) {
	mkcert, err := findMkcert()
	if err != nil {
		return nil, err
	}
	// MkdirTemp: mode 0700 and a name no one could have prepared.
	tmp, err := os.MkdirTemp(dir, ".loopauth-mkcert-")
	if err != nil {
		return nil, errorf("loopauth: creating a directory for mkcert: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpCert, tmpKey := filepath.Join(tmp, localhostCertFile), filepath.Join(tmp, localhostKeyFile)
	// Fixed names only: nothing from the caller reaches mkcert's arguments.
	if _, err := runMkcert(mkcert, timeout, "-cert-file", tmpCert, "-key-file", tmpKey, "localhost", "127.0.0.1", "::1"); err != nil {
		return nil, err
	}
	if modeBitsApply {
		// mkcert writes the key 0600 already; make sure, before the rename
		// can expose it. Lstat first: chmod follows symbolic links.
		if fi, err := os.Lstat(tmpKey); err == nil && fi.Mode().IsRegular() {
			if err := os.Chmod(tmpKey, 0o600); err != nil {
				return nil, errorf("loopauth: restricting the key mkcert wrote: %w", err)
			}
		}
	}
	c, err := loadPEMFiles(tmpCert, tmpKey, false, time.Now())
	if err != nil {
		return nil, &MkcertError{Message: "it exited successfully but wrote no usable certificate: " + strings.TrimPrefix(err.Error(), errPrefix), err: err}
	}
	if err := checkMkcertTrust(mkcert, timeout, c, roots); err != nil {
		return nil, err
	}
	if err := install(dir, tmpCert, tmpKey); err != nil {
		return nil, err
	}
	return c, nil
}

// install renames the checked files into dir, key first: a crash between
// the renames leaves a pair that does not match, which the next run
// regenerates.
func install(dir, tmpCert, tmpKey string) error {
	if err := renameReplace(tmpKey, filepath.Join(dir, localhostKeyFile)); err != nil {
		return errorf("loopauth: saving the certificate key: %w", err)
	}
	if err := renameReplace(tmpCert, filepath.Join(dir, localhostCertFile)); err != nil {
		return errorf("loopauth: saving the certificate: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return errorf("loopauth: saving the certificate: %w", err)
	}
	return nil
}

// findMkcert looks mkcert up on PATH. exec.LookPath refuses a result
// relative to the current directory with exec.ErrDot; the IsAbs check
// keeps that true whatever GODEBUG execerrdot says.
func findMkcert() (string, error) {
	path, err := exec.LookPath("mkcert")
	if errors.Is(err, exec.ErrDot) || err == nil && !filepath.IsAbs(path) {
		return "", errorf("%w: a mkcert found relative to the current directory is never run: %w", ErrMkcertNotFound, exec.ErrDot)
	}
	if err != nil {
		return "", ErrMkcertNotFound
	}
	return path, nil
}

// runMkcert runs mkcert without a shell, killing it at the deadline, and
// returns its standard output. Both streams are captured up to
// maxMkcertOutput each and the rest discarded, so a flood neither fills
// memory nor blocks the child on a full pipe.
func runMkcert(mkcert string, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mkcert, args...)
	killGroupAtDeadline(cmd)
	// Without WaitDelay, a child holding the pipes would keep Wait from
	// returning after the kill (where only mkcert itself is killed), or
	// after mkcert exited on its own.
	cmd.WaitDelay = mkcertWaitDelay
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.buf.Bytes(), nil
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// mkcert ended but left a child holding its output: end that too.
		killProcessGroup(cmd)
	}
	if ctx.Err() != nil {
		return nil, &MkcertError{Message: fmt.Sprintf("no result after %v", timeout), TimedOut: true, err: context.DeadlineExceeded}
	}
	msg := mkcertMessage(stderr.buf.Bytes())
	exitErr, ok := errorAs[*exec.ExitError](err)
	if !ok {
		msg = sanitizeText(err.Error(), maxMkcertMessage) // could not start, or left a process holding its output
	} else if msg == "" {
		msg = exitErr.String()
	}
	return nil, &MkcertError{Message: msg, err: err}
}

// mkcertMessage turns mkcert's standard error into one line safe for a
// terminal: line breaks become "; ", other control characters (ANSI
// escapes) are replaced, and it is cut to maxMkcertMessage bytes.
func mkcertMessage(stderr []byte) string {
	var lines []string
	for _, line := range strings.Split(string(stderr), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return sanitizeText(strings.Join(lines, "; "), maxMkcertMessage)
}

// cappedBuffer keeps the first maxMkcertOutput bytes written to it and
// accepts, without keeping, the rest.
type cappedBuffer struct{ buf bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxMkcertOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// checkMkcertTrust detects mkcert's silent failure: without "mkcert
// -install" it still exits 0, with a certificate from a CA no browser
// trusts. It asks mkcert where its CA is (mkcert -CAROOT), checks that the
// certificate chains to rootCA.pem there, and that the chain is trusted by
// roots (nil: the system's, via the platform verifier where Go uses one).
func checkMkcertTrust(mkcert string, timeout time.Duration, c *TLSCertificate, roots *x509.CertPool) error {
	out, err := runMkcert(mkcert, timeout, "-CAROOT")
	if err != nil {
		return err
	}
	caroot := strings.TrimSpace(string(out))
	if caroot == "" || strings.ContainsAny(caroot, "\r\n") || !filepath.IsAbs(caroot) {
		return &MkcertError{Message: `"mkcert -CAROOT" did not print a directory`}
	}
	shown := sanitizeText(caroot, 256)
	notTrusted := func(format string, args ...any) error {
		return &MkcertError{Message: fmt.Sprintf(format, args...), CANotInstalled: true, err: ErrMkcertCANotInstalled}
	}
	// Only the public root is read; the CA's key (rootCA-key.pem) never is.
	rootPEM, err := readPEMFile(filepath.Join(caroot, "rootCA.pem"), true)
	if err != nil {
		return notTrusted("no root certificate in mkcert's CAROOT %q", shown)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return notTrusted("rootCA.pem in mkcert's CAROOT %q is not a PEM certificate", shown)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return notTrusted("rootCA.pem in mkcert's CAROOT %q cannot be parsed", shown)
	}
	intermediates := x509.NewCertPool()
	for _, der := range c.cert.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			intermediates.AddCert(ic)
		}
	}
	own := x509.NewCertPool()
	own.AddCert(root)
	opts := x509.VerifyOptions{
		DNSName:       "127.0.0.1", // checked as an IP SAN
		Intermediates: intermediates,
		Roots:         own,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, err := c.cert.Leaf.Verify(opts); err != nil {
		return &MkcertError{Message: fmt.Sprintf("the certificate it wrote does not chain to the CA in its CAROOT %q: %v", shown, err), err: err}
	}
	opts.Roots = roots
	if _, err := c.cert.Leaf.Verify(opts); err != nil {
		return notTrusted("the CA in %q is not in the trust store (%v)", shown, err)
	}
	return nil
}

// Validity of the ephemeral certificate: the hour before now absorbs clock
// skew between this process and the browser; a day is far longer than a
// login flow, and the key dies with the process anyway.
const (
	selfSignedBackdate = time.Hour
	selfSignedLifetime = 24 * time.Hour
)

// newSelfSignedCertificate returns a fresh certificate for the loopback
// callback, for UseHTTPS: an ECDSA P-256 key that lives only in memory (it
// is never written anywhere), a leaf that is not a CA, and the SANs the
// redirect URI can use (127.0.0.1, ::1, localhost). The subject names no
// user or host, so the certificate reveals nothing about the machine.
// Browsers will warn about it: it chains to nothing they trust.
func newSelfSignedCertificate() (*TLSCertificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, errorf("loopauth: generating the self-signed certificate key: %w", err)
	}
	// 128 random bits: unpredictable and unique without any state, as
	// RFC 5280 §4.1.2.2 and the CA/Browser baseline (≥ 64 bits) want.
	var serialBytes [16]byte
	if _, err := rand.Read(serialBytes[:]); err != nil {
		return nil, errorf("loopauth: generating the self-signed certificate serial: %w", err)
	}
	serial := new(big.Int).SetBytes(serialBytes[:])
	if serial.Sign() == 0 {
		serial.SetInt64(1) // RFC 5280 wants a positive serial; odds 2^-128
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "loopauth localhost"},
		NotBefore:             now.Add(-selfSignedBackdate),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, errorf("loopauth: creating the self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errorf("loopauth: parsing the self-signed certificate: %w", err)
	}
	return &TLSCertificate{cert: tls.Certificate{
		Certificate: [][]byte{der},
		PrivateKey:  key,
		Leaf:        leaf,
	}}, nil
}
