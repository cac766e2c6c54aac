package loopauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// certSpec describes a test certificate; zero values give a valid leaf
// for 127.0.0.1, ::1 and localhost, valid for a year.
type certSpec struct {
	notBefore, notAfter time.Time
	ips                 []net.IP
	dns                 []string
	isCA                bool
	key                 crypto.Signer // default: a fresh P-256 key
	sigAlg              x509.SignatureAlgorithm
	extKeyUsage         []x509.ExtKeyUsage
	parent              *x509.Certificate // default: self-signed
	parentKey           crypto.Signer
}

type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
	der  []byte
}

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCert(t testing.TB, s certSpec) testCert {
	t.Helper()
	now := time.Now()
	if s.notBefore.IsZero() {
		s.notBefore = now.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = now.Add(365 * 24 * time.Hour)
	}
	if s.ips == nil && s.dns == nil {
		s.ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		s.dns = []string{"localhost"}
	}
	if s.key == nil {
		s.key = newTestKey(t)
	}
	if s.extKeyUsage == nil && !s.isCA {
		s.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "loopauth test"},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		IPAddresses:           s.ips,
		DNSNames:              s.dns,
		IsCA:                  s.isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.extKeyUsage,
		SignatureAlgorithm:    s.sigAlg,
	}
	if s.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	parent, parentKey := tmpl, s.key
	if s.parent != nil {
		parent, parentKey = s.parent, s.parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, s.key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: c, key: s.key, der: der}
}

func certPEMOf(certs ...testCert) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.der})
	}
	return b.Bytes()
}

func pkcs8PEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// assertNoKeyMaterial fails if any base64 line of keyPEM appears in msg.
func assertNoKeyMaterial(t *testing.T, msg string, keyPEMs ...[]byte) {
	t.Helper()
	for _, k := range keyPEMs {
		for _, line := range strings.Split(string(k), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
				t.Fatalf("error quotes private key material: %q", msg)
			}
		}
	}
}

func TestTLSCertificateFromPEM(t *testing.T) {
	ca := makeCert(t, certSpec{isCA: true, ips: []net.IP{}, dns: []string{}})
	leaf := makeCert(t, certSpec{parent: ca.cert, parentKey: ca.key})
	leafKey := pkcs8PEM(t, leaf.key)
	chain := certPEMOf(leaf, ca)

	t.Run("chain and PKCS#8 key", func(t *testing.T) {
		c, err := TLSCertificateFromPEM(chain, leafKey)
		if err != nil {
			t.Fatal(err)
		}
		if !c.usable() || c.cert.Leaf == nil || !c.cert.Leaf.Equal(leaf.cert) || len(c.cert.Certificate) != 2 {
			t.Fatalf("unexpected certificate: leaf %v, chain %d", c.cert.Leaf != nil, len(c.cert.Certificate))
		}
	})
	t.Run("SEC1 EC key", func(t *testing.T) {
		der, err := x509.MarshalECPrivateKey(leaf.key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
		key := append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
		if _, err := TLSCertificateFromPEM(chain, key); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PKCS#1 RSA-2048 key", func(t *testing.T) {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		c := makeCert(t, certSpec{key: rk})
		key := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
		if _, err := TLSCertificateFromPEM(certPEMOf(c), key); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("combined file passed twice", func(t *testing.T) {
		both := append(append([]byte{}, chain...), leafKey...)
		if _, err := TLSCertificateFromPEM(both, both); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("X-07 text around blocks is ignored", func(t *testing.T) {
		noisy := append([]byte("Bag Attributes\n  friendlyName: x\n"), chain...)
		noisy = append(noisy, "trailing text\n"...)
		if _, err := TLSCertificateFromPEM(noisy, leafKey); err != nil {
			t.Fatal(err)
		}
	})

	otherKey := pkcs8PEM(t, newTestKey(t))
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := makeCert(t, certSpec{key: rsa1024})
	expired := makeCert(t, certSpec{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	future := makeCert(t, certSpec{notBefore: time.Now().Add(24 * time.Hour)})
	dnsOnly := makeCert(t, certSpec{dns: []string{"localhost"}})
	caLeaf := makeCert(t, certSpec{isCA: true, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	sha1 := makeCert(t, certSpec{sigAlg: x509.ECDSAWithSHA1})
	clientOnly := makeCert(t, certSpec{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("xx")})
	truncated := chain[:len(chain)-40]

	bad := []struct {
		name, want string
		cert, key  []byte
	}{
		{"X-06 key mismatch", "does not match", chain, otherKey},
		{"X-06 expired", "expired", certPEMOf(expired), pkcs8PEM(t, expired.key)},
		{"X-06 not yet valid", "not valid before", certPEMOf(future), pkcs8PEM(t, future.key)},
		{"X-06 SAN without 127.0.0.1", "127.0.0.1", certPEMOf(dnsOnly), pkcs8PEM(t, dnsOnly.key)},
		{"X-06 RSA 1024", "1024-bit", certPEMOf(weak), pkcs8PEM(t, rsa1024)},
		{"X-06 CA certificate", "CA certificate", certPEMOf(caLeaf), pkcs8PEM(t, caLeaf.key)},
		{"X-06 SHA-1 signature", "ECDSA-SHA1", certPEMOf(sha1), pkcs8PEM(t, sha1.key)},
		{"X-06 client-only key usage", "extended key usage", certPEMOf(clientOnly), pkcs8PEM(t, clientOnly.key)},
		{"X-07 two keys", "2 private keys", chain, append(append([]byte{}, leafKey...), otherKey...)},
		{"X-07 no key", "no private key", chain, chain},
		{"X-07 no cert", "no CERTIFICATE", leafKey, leafKey},
		{"X-07 empty cert", "not PEM", nil, leafKey},
		{"X-07 garbage", "not PEM", []byte("garbage \x00\xff"), []byte("garbage")},
		{"X-07 encrypted PKCS#8", "encrypted", chain, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("xx")})},
		{"X-07 encrypted legacy PEM", "encrypted", chain, encrypted},
		{"X-07 unknown key type", "unsupported private key type", chain, pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("xx")})},
		{"X-07 wrong block type in cert", "X509 CRL", append(append([]byte{}, chain...), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte("x")})...), leafKey},
		{"X-07 wrong block type in key", "PUBLIC KEY", chain, append(append([]byte{}, leafKey...), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")})...)},
		{"X-07 key in cert data", "holds a private key", append(append([]byte{}, chain...), leafKey...), leafKey},
		{"X-07 damaged block", "damaged", truncated, leafKey},
		{"X-07 CA first", "CA certificate", certPEMOf(ca, leaf), pkcs8PEM(t, ca.key)},
		{"X-07 too many blocks", "PEM blocks", bytes.Repeat(certPEMOf(leaf), maxPEMBlocks+1), leafKey},
		{"X-07 chain too long", "more than 10", bytes.Repeat(certPEMOf(leaf), maxChainCerts+1), leafKey},
		{"X-07 key not parsable", "cannot be parsed", chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER")})},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := TLSCertificateFromPEM(tc.cert, tc.key)
			if c != nil || !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("got %v, %v; want ErrInvalidCertificate", c, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
			if strings.Count(msg, "loopauth: ") != 1 {
				t.Fatalf("prefix not once: %q", msg)
			}
			assertNoKeyMaterial(t, msg, tc.key, leafKey, otherKey)
		})
	}
}

func TestTLSCertificateFromPEMFiles(t *testing.T) {
	leaf := makeCert(t, certSpec{})
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeFile(t, certPath, certPEMOf(leaf), 0o644)
	writeFile(t, keyPath, pkcs8PEM(t, leaf.key), 0o600)
	if _, err := TLSCertificateFromPEMFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	t.Run("symlinks followed", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need privileges on Windows")
		}
		link := filepath.Join(dir, "link.pem")
		if err := os.Symlink(certPath, link); err != nil {
			t.Fatal(err)
		}
		if _, err := TLSCertificateFromPEMFiles(link, keyPath); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := TLSCertificateFromPEMFiles(filepath.Join(dir, "nope"), keyPath)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := TLSCertificateFromPEMFiles(dir, keyPath)
		if !errors.Is(err, ErrUnsafeCertificatePath) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("X-07 50 MiB file", func(t *testing.T) {
		big := filepath.Join(dir, "big.pem")
		f, err := os.Create(big)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(50 << 20); err != nil { // sparse: cheap to create
			t.Fatal(err)
		}
		f.Close()
		_, err = TLSCertificateFromPEMFiles(certPath, big)
		if !errors.Is(err, ErrInvalidCertificate) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("got %v", err)
		}
	})
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// serveTLS runs an HTTPS server with c.serverConfig() on 127.0.0.1 and
// fetches a page with a client that trusts only roots.
func serveTLS(t *testing.T, c *TLSCertificate, roots *x509.CertPool, serverName string) *tls.ConnectionState {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.serverConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/callback")
	if err != nil {
		t.Fatalf("HTTPS request (server name %q): %v", serverName, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" || resp.TLS == nil {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("ALPN %q, want http/1.1", resp.TLS.NegotiatedProtocol)
	}
	return resp.TLS
}

func TestServerConfig(t *testing.T) {
	c, err := newSelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("X-08", func(t *testing.T) {
		cfg := c.serverConfig()
		if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert ||
			len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" || len(cfg.Certificates) != 1 {
			t.Fatalf("unexpected config: min %x auth %v protos %v", cfg.MinVersion, cfg.ClientAuth, cfg.NextProtos)
		}
		cfg.NextProtos[0] = "h2"
		if c.serverConfig().NextProtos[0] != "http/1.1" {
			t.Fatal("serverConfig shares state between calls")
		}
		// A TLS 1.1 client is refused.
		ln, err := tls.Listen("tcp", "127.0.0.1:0", c.serverConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			conn, err := ln.Accept()
			if err == nil {
				conn.(*tls.Conn).Handshake()
				conn.Close()
			}
		}()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("zero value unusable", func(t *testing.T) {
		var zero *TLSCertificate
		if zero.usable() || (&TLSCertificate{}).usable() || !c.usable() {
			t.Fatal("usable() wrong")
		}
	})
}

// requireMkcert returns the real mkcert, skipping outside CI when it is
// missing; CI installs it, so there its absence is a failure.
func requireMkcert(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("mkcert")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mkcert is required in CI (apt-get install mkcert): %v", err)
		}
		t.Skipf("mkcert is not installed (apt-get install mkcert to run this test): %v", err)
	}
	if runtime.GOOS == "windows" {
		t.Skip("the mkcert tests use POSIX sh shims")
	}
	return path
}

func requireSh(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("fake mkcert scripts need a POSIX sh; not available on Windows")
	}
}

// writeScript writes an executable sh script named mkcert into dir.
func writeScript(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "mkcert")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nPATH=/usr/bin:/bin\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// expectChildGone reads the PID a fake mkcert wrote to pidFile and waits
// up to five seconds for that process to end.
func expectChildGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the fake mkcert did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		t.Fatalf("child PID %q", data)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil && !childGone(pid) {
			p.Kill() // do not leave it behind when the test fails
		}
	})
	for deadline := time.Now().Add(5 * time.Second); !childGone(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("mkcert's child (PID %d) is still running", pid)
		}
	}
}

func callCount(t *testing.T, log string) int {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

func rootPool(t *testing.T, caroot string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(caroot, "rootCA.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("rootCA.pem holds no certificate")
	}
	return pool
}

func assertCertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if !modeBitsApply {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

func TestEnsureLocalhostRealMkcert(t *testing.T) {
	real := requireMkcert(t)
	caroot := t.TempDir()
	t.Setenv("CAROOT", caroot) // mkcert creates its CA there on first use; -install is never run
	shimDir := t.TempDir()
	log := filepath.Join(shimDir, "calls.log")
	writeScript(t, shimDir, "printf '%s\\n' \"$*\" >> '"+log+"'\nexec '"+real+"' \"$@\"\n")
	t.Setenv("PATH", shimDir)
	dir := filepath.Join(t.TempDir(), "config", "tls")
	certPath, keyPath := filepath.Join(dir, localhostCertFile), filepath.Join(dir, localhostKeyFile)

	t.Run("M-08 CA not in the system trust store", func(t *testing.T) {
		c, err := ensureLocalhost(dir, nil, mkcertTimeout)
		var me *MkcertError
		if c != nil || !errors.Is(err, ErrMkcertCANotInstalled) || !errors.As(err, &me) || !me.CANotInstalled {
			t.Fatalf("got %v, %v; want ErrMkcertCANotInstalled", c, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "mkcert -install") {
			t.Fatalf("error does not give the fix: %q", msg)
		}
		if _, err := os.Lstat(certPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("an untrusted certificate was kept for reuse")
		}
		assertCertMode(t, dir, 0o700)
		assertCertMode(t, filepath.Dir(dir), 0o700)
	})
	if t.Failed() {
		return
	}
	roots := rootPool(t, caroot)

	var first os.FileInfo
	t.Run("generate, load, serve", func(t *testing.T) {
		c, err := ensureLocalhost(dir, roots, mkcertTimeout)
		if err != nil {
			t.Fatal(err)
		}
		assertCertMode(t, dir, 0o700)
		assertCertMode(t, keyPath, 0o600)
		leaf := c.cert.Leaf
		if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if err := leaf.VerifyHostname("::1"); err != nil {
			t.Fatal(err)
		}
		if err := leaf.VerifyHostname("localhost"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
			serveTLS(t, c, roots, name)
		}
		if first, err = os.Lstat(certPath); err != nil {
			t.Fatal(err)
		}
		// The private temp directory is gone.
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Fatalf("directory holds %d entries, want 2", len(entries))
		}
		if data, _ := os.ReadFile(log); strings.Contains(string(data), "-install") {
			t.Fatal("mkcert -install was run")
		}
	})
	if t.Failed() {
		return
	}

	t.Run("reuse does not run mkcert", func(t *testing.T) {
		before := callCount(t, log)
		c, err := ensureLocalhost(dir, roots, mkcertTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if n := callCount(t, log); n != before {
			t.Fatalf("mkcert ran %d more times", n-before)
		}
		now, err := os.Lstat(certPath)
		if err != nil || !os.SameFile(first, now) || !now.ModTime().Equal(first.ModTime()) {
			t.Fatal("the certificate file was replaced")
		}
		serveTLS(t, c, roots, "127.0.0.1")
	})

	ca := loadCA(t, caroot)
	regenerated := func(t *testing.T, certPEM, keyPEM []byte, keyMode os.FileMode) {
		t.Helper()
		writeFile(t, certPath, certPEM, 0o644)
		writeFile(t, keyPath, keyPEM, keyMode)
		before := callCount(t, log)
		c, err := ensureLocalhost(dir, roots, mkcertTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if callCount(t, log) == before {
			t.Fatal("mkcert was not run again")
		}
		if c.cert.Leaf.NotAfter.Before(time.Now().Add(365 * 24 * time.Hour)) {
			t.Fatalf("not a fresh mkcert certificate: expires %v", c.cert.Leaf.NotAfter)
		}
		assertCertMode(t, keyPath, 0o600)
		if _, err := TLSCertificateFromPEMFiles(certPath, keyPath); err != nil {
			t.Fatalf("the files on disk: %v", err)
		}
		serveTLS(t, c, roots, "localhost")
	}
	t.Run("X-06 expired files regenerated", func(t *testing.T) {
		old := makeCert(t, certSpec{notBefore: time.Now().Add(-30 * 24 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour), parent: ca.cert, parentKey: ca.key})
		regenerated(t, certPEMOf(old), pkcs8PEM(t, old.key), 0o600)
	})
	t.Run("X-09 files expiring within 7 days regenerated", func(t *testing.T) {
		soon := makeCert(t, certSpec{notAfter: time.Now().Add(3 * 24 * time.Hour), parent: ca.cert, parentKey: ca.key})
		regenerated(t, certPEMOf(soon), pkcs8PEM(t, soon.key), 0o600)
	})
	t.Run("X-06 mismatched key regenerated", func(t *testing.T) {
		certPEM, err := os.ReadFile(certPath)
		if err != nil {
			t.Fatal(err)
		}
		regenerated(t, certPEM, pkcs8PEM(t, newTestKey(t)), 0o600)
	})
	t.Run("X-04 key readable by others regenerated", func(t *testing.T) {
		if !modeBitsApply {
			t.Skip("no Unix permission bits")
		}
		certPEM, _ := os.ReadFile(certPath)
		keyPEM, _ := os.ReadFile(keyPath)
		regenerated(t, certPEM, keyPEM, 0o644)
	})
	t.Run("X-06 garbage files regenerated", func(t *testing.T) {
		regenerated(t, []byte("garbage"), []byte("garbage"), 0o600)
	})
}

// loadCA reads mkcert's CA from caroot: tests may read its key to sign
// expired certificates; the library never does (M-04).
func loadCA(t *testing.T, caroot string) testCert {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(caroot, "rootCA.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(caroot, "rootCA-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: leaf, key: pair.PrivateKey.(crypto.Signer), der: pair.Certificate[0]}
}

// fakeCA is a CA made in Go, and a leaf it signed, for fake mkcert
// scripts that copy them into place.
type fakeCA struct {
	caroot, src string
	pool        *x509.CertPool
}

func newFakeCA(t *testing.T) fakeCA {
	t.Helper()
	ca := makeCert(t, certSpec{isCA: true, ips: []net.IP{}, dns: []string{}})
	leaf := makeCert(t, certSpec{parent: ca.cert, parentKey: ca.key})
	f := fakeCA{caroot: t.TempDir(), src: t.TempDir(), pool: x509.NewCertPool()}
	f.pool.AddCert(ca.cert)
	writeFile(t, filepath.Join(f.caroot, "rootCA.pem"), certPEMOf(ca), 0o644)
	writeFile(t, filepath.Join(f.src, "cert.pem"), certPEMOf(leaf), 0o644)
	writeFile(t, filepath.Join(f.src, "key.pem"), pkcs8PEM(t, leaf.key), 0o600)
	return f
}

// copyScript is a fake mkcert that logs its arguments and environment,
// prints CAROOT for -CAROOT, and otherwise copies the fake CA's leaf to
// the -cert-file and -key-file paths ($2 and $4), the key with umask 022
// so that the library has to restrict it.
func (f fakeCA) copyScript(log string) string {
	return "printf '%s\\n' \"$*\" >> '" + log + "'\n" +
		"printf 'CAROOT=%s TRUST_STORES=%s\\n' \"$CAROOT\" \"$TRUST_STORES\" >> '" + log + ".env'\n" +
		"if [ \"$1\" = -CAROOT ]; then printf '%s\\n' \"$CAROOT\"; exit 0; fi\n" +
		"umask 022\ncat '" + f.src + "/cert.pem' > \"$2\"\ncat '" + f.src + "/key.pem' > \"$4\"\n"
}

func TestEnsureLocalhostFakeMkcert(t *testing.T) {
	requireSh(t)
	fake := func(t *testing.T, body string) {
		t.Helper()
		bin := t.TempDir()
		writeScript(t, bin, body)
		t.Setenv("PATH", bin)
	}
	expectMkcertError := func(t *testing.T, err error) *MkcertError {
		t.Helper()
		var me *MkcertError
		if !errors.As(err, &me) {
			t.Fatalf("got %v, want *MkcertError", err)
		}
		return me
	}

	t.Run("M-01 not on PATH", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		dir := filepath.Join(t.TempDir(), "a", "b")
		_, err := ensureLocalhost(dir, nil, time.Second)
		if !errors.Is(err, ErrMkcertNotFound) {
			t.Fatalf("got %v", err)
		}
		assertCertMode(t, dir, 0o700) // created private, even on failure
		assertCertMode(t, filepath.Dir(dir), 0o700)
	})
	t.Run("M-01 current directory never searched", func(t *testing.T) {
		cwd := t.TempDir()
		marker := filepath.Join(cwd, "ran")
		writeScript(t, cwd, "touch '"+marker+"'\n")
		old, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chdir(cwd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chdir(old) })
		for _, path := range []string{t.TempDir(), ".", "", "." + string(os.PathListSeparator) + t.TempDir()} {
			t.Setenv("PATH", path)
			_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, time.Second)
			if !errors.Is(err, ErrMkcertNotFound) {
				t.Fatalf("PATH=%q: got %v", path, err)
			}
			if path == "." && !errors.Is(err, exec.ErrDot) {
				t.Fatalf("PATH=%q: got %v, want exec.ErrDot too", path, err)
			}
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("./mkcert was run")
		}
	})
	t.Run("M-06 exit 1 with hostile stderr", func(t *testing.T) {
		fake(t, "printf '\\033[31mERROR: boom\\033[0m\\r\\nsecond line\\n' >&2\nhead -c 1048576 /dev/zero | tr '\\000' 'x' >&2\nexit 1\n")
		start := time.Now()
		_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, 10*time.Second)
		me := expectMkcertError(t, err)
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || me.TimedOut || me.CANotInstalled {
			t.Fatalf("got %#v", me)
		}
		if !strings.HasPrefix(me.Message, "\uFFFD[31mERROR: boom\uFFFD[0m; second line; xxx") {
			t.Fatalf("message %q", me.Message[:min(80, len(me.Message))])
		}
		if len(me.Message) > maxMkcertMessage+len("…") || strings.ContainsAny(me.Message, "\x1b\r\n") {
			t.Fatalf("message not capped or sanitized: %d bytes", len(me.Message))
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("too slow")
		}
	})
	t.Run("M-05 hang is killed at the deadline", func(t *testing.T) {
		fake(t, "sleep 60\n")
		start := time.Now()
		_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, time.Second)
		me := expectMkcertError(t, err)
		if !me.TimedOut || !strings.Contains(err.Error(), "did not finish in time") {
			t.Fatalf("got %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("M-05 hang with a child: the whole process group is killed", func(t *testing.T) {
		// The fake mkcert starts a sleeping child that holds its output
		// pipes, records the child's PID and hangs. Killing mkcert alone
		// would leave the child running.
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		fake(t, "sleep 60 &\necho $! > '"+pidFile+"'\nwait\n")
		check := noLeaks(t)
		start := time.Now()
		_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, time.Second)
		check()
		if me := expectMkcertError(t, err); !me.TimedOut || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a timeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("returned after %v", d)
		}
		expectChildGone(t, pidFile)
	})
	t.Run("M-05 exit leaving a child that holds the output: the child is killed", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		fake(t, "sleep 60 &\necho $! > '"+pidFile+"'\nexit 0\n")
		check := noLeaks(t)
		_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, 10*time.Second)
		check()
		if me := expectMkcertError(t, err); me.TimedOut || !errors.Is(err, exec.ErrWaitDelay) {
			t.Fatalf("got %v, want exec.ErrWaitDelay", err)
		}
		expectChildGone(t, pidFile)
	})
	t.Run("M-05 stdout flood", func(t *testing.T) {
		fake(t, "head -c 20000000 /dev/zero\nexit 0\n")
		_, err := ensureLocalhost(filepath.Join(t.TempDir(), "tls"), nil, 10*time.Second)
		expectMkcertError(t, err) // wrote no files
	})
	t.Run("garbage output", func(t *testing.T) {
		fake(t, "printf 'not PEM' > \"$2\"\nprintf 'not PEM' > \"$4\"\n")
		dir := filepath.Join(t.TempDir(), "tls")
		_, err := ensureLocalhost(dir, nil, time.Second)
		me := expectMkcertError(t, err)
		if !errors.Is(err, ErrInvalidCertificate) || !strings.Contains(me.Message, "not PEM") {
			t.Fatalf("got %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("left %d entries in the directory", len(entries))
		}
	})
	t.Run("M-07 symlink output refused", func(t *testing.T) {
		f := newFakeCA(t)
		fake(t, "cat '"+f.src+"/cert.pem' > \"$2\"\nln -s '"+f.src+"/key.pem' \"$4\"\n")
		dir := filepath.Join(t.TempDir(), "tls")
		_, err := ensureLocalhost(dir, f.pool, time.Second)
		expectMkcertError(t, err)
		if !errors.Is(err, ErrUnsafeCertificatePath) {
			t.Fatalf("got %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("left %d entries in the directory", len(entries))
		}
	})

	t.Run("M-02 M-03 M-04 M-07 arguments, environment, key mode", func(t *testing.T) {
		f := newFakeCA(t)
		bin := t.TempDir()
		log := filepath.Join(bin, "calls.log")
		writeScript(t, bin, f.copyScript(log))
		t.Setenv("PATH", bin)
		t.Setenv("CAROOT", f.caroot)
		t.Setenv("TRUST_STORES", "system -install")
		dir := filepath.Join(t.TempDir(), "tls")
		c, err := ensureLocalhost(dir, f.pool, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		serveTLS(t, c, f.pool, "127.0.0.1")
		assertCertMode(t, filepath.Join(dir, localhostKeyFile), 0o600)
		data, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 || lines[1] != "-CAROOT" {
			t.Fatalf("calls: %q", lines)
		}
		args := strings.Fields(lines[0])
		if len(args) != 7 || args[0] != "-cert-file" || args[2] != "-key-file" ||
			strings.Join(args[4:], " ") != "localhost 127.0.0.1 ::1" ||
			filepath.Base(args[1]) != localhostCertFile || filepath.Base(args[3]) != localhostKeyFile ||
			filepath.Dir(args[1]) != filepath.Dir(args[3]) || filepath.Dir(filepath.Dir(args[1])) != dir {
			t.Fatalf("arguments %q", args)
		}
		if _, err := os.Stat(filepath.Dir(args[1])); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("the temporary directory was not removed")
		}
		env, _ := os.ReadFile(log + ".env")
		if want := "CAROOT=" + f.caroot + " TRUST_STORES=system -install\n"; !strings.HasPrefix(string(env), want) {
			t.Fatalf("environment %q, want %q", env, want)
		}
		// Reuse: no further call.
		if _, err := ensureLocalhost(dir, f.pool, time.Second); err != nil || callCount(t, log) != 2 {
			t.Fatalf("reuse: %v, %d calls", err, callCount(t, log))
		}
	})
	t.Run("M-08 CA not trusted", func(t *testing.T) {
		f := newFakeCA(t)
		bin := t.TempDir()
		writeScript(t, bin, f.copyScript(filepath.Join(bin, "log")))
		t.Setenv("PATH", bin)
		t.Setenv("CAROOT", f.caroot)
		dir := filepath.Join(t.TempDir(), "tls")
		_, err := ensureLocalhost(dir, x509.NewCertPool(), time.Second)
		if me := expectMkcertError(t, err); !me.CANotInstalled || !errors.Is(err, ErrMkcertCANotInstalled) {
			t.Fatalf("got %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("left %d entries in the directory", len(entries))
		}
		// No rootCA.pem in CAROOT: not installed either.
		t.Setenv("CAROOT", t.TempDir())
		_, err = ensureLocalhost(dir, f.pool, time.Second)
		if !errors.Is(err, ErrMkcertCANotInstalled) || !strings.Contains(err.Error(), "no root certificate") {
			t.Fatalf("got %v", err)
		}
		// A certificate from another CA than CAROOT's.
		other := newFakeCA(t)
		t.Setenv("CAROOT", other.caroot)
		_, err = ensureLocalhost(dir, f.pool, time.Second)
		if me := expectMkcertError(t, err); me.CANotInstalled || !strings.Contains(err.Error(), "does not chain") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEnsureLocalhostPaths(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no mkcert: path checks come first
	t.Run("empty dir", func(t *testing.T) {
		if _, err := EnsureLocalhost(""); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("got %v", err)
		}
	})
	// expectDirRefused checks the error for a certificate directory others
	// may use: ErrUnsafeCertificatePath, a *FileModeError naming dir, the
	// fix in the message, and nothing about token files.
	expectDirRefused := func(t *testing.T, dir string, err error, fix string) {
		t.Helper()
		var fme *FileModeError
		if !errors.Is(err, ErrUnsafeCertificatePath) || !errors.As(err, &fme) || fme.Path != dir || !fme.Mode.IsDir() {
			t.Fatalf("got %v (%T), want a *FileModeError for %q matching ErrUnsafeCertificatePath", err, err, dir)
		}
		msg := err.Error()
		if !strings.Contains(msg, fix) || !strings.Contains(msg, "certificate directory") || strings.Contains(msg, "token") ||
			strings.Count(msg, "loopauth: ") != 1 {
			t.Fatalf("message does not say the fix %q: %q", fix, msg)
		}
	}
	t.Run("X-04 directory open to others", func(t *testing.T) {
		if !modeBitsApply {
			t.Skip("no Unix permission bits")
		}
		cases := []struct {
			mode os.FileMode
			fix  string
		}{
			{0o777, "only you can write"},
			{0o777 | os.ModeSticky, "only you can write"}, // a shared directory like /tmp
			{0o770, "only you can write"},                 // group-writable
			{0o720, "only you can write"},
			{0o702 | os.ModeSticky, "only you can write"},
			{0o755, "chmod 700"},
			{0o750, "chmod 700"},
			{0o704, "chmod 700"},
		}
		for _, tc := range cases {
			dir := filepath.Join(t.TempDir(), "tls")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(dir); err != nil || fi.Mode()&(os.ModePerm|os.ModeSticky) != tc.mode {
				t.Fatalf("mode %v not set: %v", tc.mode, fi.Mode())
			}
			_, err := EnsureLocalhost(dir)
			expectDirRefused(t, dir, err, tc.fix)
			if tc.fix == "chmod 700" {
				continue
			}
			if !strings.Contains(err.Error(), "chmod 700 "+strconv.Quote(dir)) {
				t.Fatalf("mode %v: no chmod advice for a directory of one's own: %v", tc.mode, err)
			}
		}
		// Private modes, the sticky bit alone included, are accepted.
		for _, mode := range []os.FileMode{0o700, 0o700 | os.ModeSticky, 0o500} {
			dir := filepath.Join(t.TempDir(), "tls")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := EnsureLocalhost(dir); !errors.Is(err, ErrMkcertNotFound) {
				t.Fatalf("mode %v: got %v, want ErrMkcertNotFound (no mkcert on PATH)", mode, err)
			}
		}
	})
	t.Run("X-04 directory of another user", func(t *testing.T) {
		if !modeBitsApply {
			t.Skip("no Unix ownership: on Windows the directory's ACL decides")
		}
		if os.Geteuid() != 0 {
			t.Skip("giving a directory to another user needs root (CI runs as root); run as root to test the owner check")
		}
		const nobody = 65534
		leaf := makeCert(t, certSpec{})
		for _, mode := range []os.FileMode{0o700, 0o755} {
			dir := filepath.Join(t.TempDir(), "tls")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			// Valid files inside: they must not be reused from a
			// directory someone else controls.
			writeFile(t, filepath.Join(dir, localhostCertFile), certPEMOf(leaf), 0o644)
			writeFile(t, filepath.Join(dir, localhostKeyFile), pkcs8PEM(t, leaf.key), 0o600)
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, nobody, nobody); err != nil {
				t.Skipf("chown is not permitted here: %v", err)
			}
			_, err := EnsureLocalhost(dir)
			expectDirRefused(t, dir, err, "belongs to another user (uid 65534)")
			if !strings.Contains(err.Error(), "remove it") || !strings.Contains(err.Error(), "chown") {
				t.Fatalf("mode %v: the fix is missing: %v", mode, err)
			}
		}
	})
	t.Run("X-05 symlinks refused", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need privileges on Windows")
		}
		leaf := makeCert(t, certSpec{})
		target := t.TempDir()
		os.Chmod(target, 0o700)
		writeFile(t, filepath.Join(target, "victim"), []byte("x"), 0o600)
		linkDir := filepath.Join(t.TempDir(), "tls")
		if err := os.Symlink(target, linkDir); err != nil {
			t.Fatal(err)
		}
		if _, err := EnsureLocalhost(linkDir); !errors.Is(err, ErrUnsafeCertificatePath) {
			t.Fatalf("symlinked directory: got %v", err)
		}
		for _, name := range []string{localhostCertFile, localhostKeyFile} {
			dir := filepath.Join(t.TempDir(), "tls")
			os.Mkdir(dir, 0o700)
			writeFile(t, filepath.Join(dir, localhostCertFile), certPEMOf(leaf), 0o644)
			writeFile(t, filepath.Join(dir, localhostKeyFile), pkcs8PEM(t, leaf.key), 0o600)
			os.Remove(filepath.Join(dir, name))
			if err := os.Symlink(filepath.Join(target, "victim"), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			if _, err := EnsureLocalhost(dir); !errors.Is(err, ErrUnsafeCertificatePath) {
				t.Fatalf("symlinked %s: got %v", name, err)
			}
		}
		if data, _ := os.ReadFile(filepath.Join(target, "victim")); string(data) != "x" {
			t.Fatal("symlink target changed")
		}
	})
	t.Run("valid files reused without mkcert", func(t *testing.T) {
		leaf := makeCert(t, certSpec{})
		dir := filepath.Join(t.TempDir(), "tls")
		os.Mkdir(dir, 0o700)
		writeFile(t, filepath.Join(dir, localhostCertFile), certPEMOf(leaf), 0o644)
		writeFile(t, filepath.Join(dir, localhostKeyFile), pkcs8PEM(t, leaf.key), 0o600)
		c, err := EnsureLocalhost(dir)
		if err != nil || !c.cert.Leaf.Equal(leaf.cert) {
			t.Fatalf("got %v", err)
		}
	})
}

// flatText is s with every run of white space made one space, so that
// phrases can be checked across line breaks.
func flatText(s string) string { return strings.Join(strings.Fields(s), " ") }

// guideLines returns the lines of a setup guide, for comparison with the
// text the user must see.
func guideLines(guide string) []string { return strings.Split(guide, "\n") }

// assertLinesInOrder fails unless every want line is a whole line of got,
// in this order.
func assertLinesInOrder(t *testing.T, name string, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, line := range got {
		if i < len(want) && line == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("%s lacks the line %q (or has it out of order)", name, want[i])
	}
}

// TestSetupGuides checks the guides' text against what a user must read
// and run, after the Rust crate's SETUP_GUIDE and SETUP_GUIDE_MANAGED: the
// title, the numbered steps and the exact commands.
func TestSetupGuides(t *testing.T) {
	title := []string{"HTTPS Certificate Setup", "======================="}
	install := []string{
		"1. Install mkcert (https://github.com/FiloSottile/mkcert#installation)",
		"     macOS: brew install mkcert",
		"     Other platforms: see the link above",
	}
	trust := []string{
		"2. Create and trust a local certificate authority (may prompt for a password):",
		"     mkcert -install",
	}
	t.Run("SetupGuide", func(t *testing.T) {
		got := guideLines(SetupGuide)
		if len(got) < 2 || got[0] != title[0] || got[1] != title[1] {
			t.Errorf("SetupGuide does not start with its title: %q", got[:min(2, len(got))])
		}
		want := append(append(append([]string{}, install...), trust...),
			"3. Generate a certificate:",
			// The names EnsureLocalhost uses, and every address the
			// callback may be reached at.
			"     mkcert -cert-file "+localhostCertFile+" -key-file "+localhostKeyFile+" localhost 127.0.0.1 ::1",
			"4. Give both files to the application as its documentation describes.",
		)
		assertLinesInOrder(t, "SetupGuide", got, want...)
		for _, s := range []string{
			"Steps 1 and 2 are global and can be run from any directory.",
			"It does not affect other machines or network traffic.",
			"certificate (safe to share)",
			"its private key (keep it secure: only you should be able to read it)",
			"signed by the same CA",
			"The files are reusable and not tied to the directory they were generated in.",
			"The certificate is only valid for localhost, 127.0.0.1 and ::1.",
		} {
			if !strings.Contains(flatText(SetupGuide), s) {
				t.Errorf("SetupGuide lacks %q", s)
			}
		}
		if strings.Contains(SetupGuide, "there is no step 3") {
			t.Error("SetupGuide has the managed guide's ending")
		}
	})
	t.Run("SetupGuideManaged", func(t *testing.T) {
		got := guideLines(SetupGuideManaged)
		if len(got) < 2 || got[0] != title[0] || got[1] != title[1] {
			t.Errorf("SetupGuideManaged does not start with its title: %q", got[:min(2, len(got))])
		}
		assertLinesInOrder(t, "SetupGuideManaged", got, append(append([]string{}, install...), trust...)...)
		for _, s := range []string{
			"Both commands below can be run from any directory; they are global operations.",
			"That's it; there is no step 3.",
			"The application generates its certificate for localhost, 127.0.0.1 and ::1 automatically on its next run.",
			"If you have already run mkcert -install (for example for another tool), only step 1 is needed.",
		} {
			if !strings.Contains(flatText(SetupGuideManaged), s) {
				t.Errorf("SetupGuideManaged lacks %q", s)
			}
		}
		// The application makes the certificate: the user is never told
		// to generate one or to hand files over.
		for _, s := range []string{"-cert-file", "\n3. ", "\n4. "} {
			if strings.Contains(SetupGuideManaged, s) {
				t.Errorf("SetupGuideManaged has %q, a step of the manual guide", s)
			}
		}
	})
	// The errors for which the documentation says to print
	// SetupGuideManaged carry the step that fixes them, in the guide's
	// words, so a program that prints only the error still helps.
	t.Run("errors name their step", func(t *testing.T) {
		if msg := ErrMkcertNotFound.Error(); !strings.Contains(msg, "https://github.com/FiloSottile/mkcert#installation") || !strings.Contains(SetupGuideManaged, "https://github.com/FiloSottile/mkcert#installation") {
			t.Errorf("ErrMkcertNotFound does not link to step 1 of the guide: %q", msg)
		}
		notTrusted := &MkcertError{CANotInstalled: true, err: ErrMkcertCANotInstalled}
		if msg := notTrusted.Error(); !strings.Contains(msg, `run "mkcert -install"`) {
			t.Errorf("the CA-not-installed error does not give step 2 of the guide: %q", msg)
		}
		if !errors.Is(notTrusted, ErrMkcertCANotInstalled) {
			t.Error("the CA-not-installed error does not match ErrMkcertCANotInstalled")
		}
	})
}
