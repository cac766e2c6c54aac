package loopauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// testCA makes a CA and a leaf for the loopback names, as mkcert would.
func testCA(t *testing.T) (pool *x509.CertPool, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// tlsBrowser follows the provider's redirect to the https callback with a
// client configured by cfg.
func tlsBrowser(cfg *tls.Config) BrowserOpener {
	return func(ctx context.Context, authURL string) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("callback answered %d", resp.StatusCode)
		}
		return nil
	}
}

// TestFlowHTTPSWith: a flow served with a certificate of the caller's CA
// completes with a user agent that trusts only that CA, and the redirect
// URI is https.
func TestFlowHTTPSWith(t *testing.T) {
	pool, certPEM, keyPEM := testCA(t)
	cert, err := TLSCertificateFromPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := loopauthtest.NewProvider(t)
	c := flowClient(t, p, tlsBrowser(&tls.Config{RootCAs: pool}), func(b *CLITokenClientBuilder) { b.UseHTTPSWith(cert) })
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	ru, _ := url.Parse(p.AuthorizeRequests()[0].Get("redirect_uri"))
	if ru.Scheme != "https" || ru.Hostname() != "127.0.0.1" || p.TokenRequests()[0].Get("redirect_uri") != ru.String() {
		t.Errorf("redirect URI %s", ru)
	}
	for _, bad := range []*TLSCertificate{nil, {}} {
		if _, err := NewBuilder().ClientID("c").AuthURL("https://a.example/a").TokenURL("https://a.example/t").UseHTTPSWith(bad).Build(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("UseHTTPSWith(%v): %v", bad, err)
		}
	}
}

// TestFlowHTTPSSelfSigned: UseHTTPS makes a fresh certificate per flow for
// the loopback names.
func TestFlowHTTPSSelfSigned(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	var leaves []*x509.Certificate
	cfg := &tls.Config{
		InsecureSkipVerify: true, // the test checks the certificate itself
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				return err
			}
			leaves = append(leaves, leaf)
			return nil
		},
	}
	c := flowClient(t, p, tlsBrowser(cfg), func(b *CLITokenClientBuilder) { b.UseHTTPS() })
	for i := 0; i < 2; i++ {
		if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Each flow has two connections (the callback, then /done after the
	// 303), which see that flow's one certificate.
	if len(leaves) != 4 || leaves[0].SerialNumber.Cmp(leaves[1].SerialNumber) != 0 ||
		leaves[2].SerialNumber.Cmp(leaves[3].SerialNumber) != 0 || leaves[0].SerialNumber.Cmp(leaves[2].SerialNumber) == 0 {
		t.Errorf("certificates: %d, the same one in both flows?", len(leaves))
	}
}

// TestFlowHTTPSStalledPeers covers C-39 and the stalled peers: a
// TCP connection that never speaks, a TLS handshake that stops half way,
// plain HTTP on the TLS port and a foreign SNI do not delay or end the
// flow; the real callback completes promptly.
func TestFlowHTTPSStalledPeers(t *testing.T) {
	pool, certPEM, keyPEM := testCA(t)
	cert, _ := TLSCertificateFromPEM(certPEM, keyPEM)
	p := loopauthtest.NewProvider(t)
	real := tlsBrowser(&tls.Config{RootCAs: pool})
	var port int
	c := flowClient(t, p, func(ctx context.Context, u string) error {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer silent.Close()
		half, _ := net.Dial("tcp", addr)
		defer half.Close()
		half.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}) // a ClientHello header, then nothing
		plain, _ := net.Dial("tcp", addr)
		defer plain.Close()
		fmt.Fprintf(plain, "GET /callback?code=x&state=y HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		sni, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "evil.example", InsecureSkipVerify: true})
		if err == nil {
			fmt.Fprintf(sni, "GET /callback?code=x HTTP/1.1\r\nHost: evil.example\r\n\r\n")
			defer sni.Close()
		}
		return real(ctx, u)
	}, func(b *CLITokenClientBuilder) {
		b.UseHTTPSWith(cert).OnServerReady(func(p int) { port = p })
	})
	start := time.Now()
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the real callback took %v behind stalled peers", d)
	}
	if strings.Contains(fmt.Sprint(p.TokenRequests()), "code=x") || len(p.TokenRequests()) != 1 {
		t.Errorf("token requests: %d", len(p.TokenRequests()))
	}
}

// TestFlowHTTPSWithMkcert: a whole flow over HTTPS with a certificate the
// real mkcert made (CAROOT in a temporary directory, nothing installed),
// verified by a user agent that trusts only that authority.
func TestFlowHTTPSWithMkcert(t *testing.T) {
	requireMkcert(t)
	caroot := t.TempDir()
	t.Setenv("CAROOT", caroot)
	dir := filepath.Join(t.TempDir(), "tls")
	// The first run creates the authority in CAROOT; it is not trusted by
	// this system, which is reported.
	if _, err := ensureLocalhost(dir, nil, mkcertTimeout); !errors.Is(err, ErrMkcertCANotInstalled) {
		t.Fatalf("first run: %v", err)
	}
	roots := rootPool(t, caroot)
	cert, err := ensureLocalhost(dir, roots, mkcertTimeout)
	if err != nil {
		t.Fatal(err)
	}
	p := loopauthtest.NewProvider(t)
	c := flowClient(t, p, tlsBrowser(&tls.Config{RootCAs: roots}), func(b *CLITokenClientBuilder) { b.UseHTTPSWith(cert) })
	if _, err := c.RunAuthorizationFlow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ru := p.TokenRequests()[0].Get("redirect_uri"); !strings.HasPrefix(ru, "https://127.0.0.1:") {
		t.Errorf("redirect_uri %q", ru)
	}
}
