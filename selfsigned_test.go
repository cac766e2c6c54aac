package loopauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

func TestSelfSignedCertificate(t *testing.T) {
	before := time.Now()
	c, err := newSelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.cert.Leaf
	if leaf == nil || len(c.cert.Certificate) != 1 {
		t.Fatal("leaf not set or chain not a single certificate")
	}
	t.Run("X-01 fields", func(t *testing.T) {
		key, ok := c.cert.PrivateKey.(*ecdsa.PrivateKey)
		if !ok || key.Curve != elliptic.P256() || leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Fatalf("key %T, algorithm %v", c.cert.PrivateKey, leaf.SignatureAlgorithm)
		}
		if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
			t.Fatalf("IP SANs %v", leaf.IPAddresses)
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" || len(leaf.EmailAddresses)+len(leaf.URIs) != 0 {
			t.Fatalf("other SANs %v %v %v", leaf.DNSNames, leaf.EmailAddresses, leaf.URIs)
		}
		if leaf.IsCA || !leaf.BasicConstraintsValid {
			t.Fatal("must be a leaf with basic constraints")
		}
		if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Fatalf("key usage %v %v", leaf.KeyUsage, leaf.ExtKeyUsage)
		}
		if nb := before.Add(-selfSignedBackdate); leaf.NotBefore.After(before.Add(-59*time.Minute)) || leaf.NotBefore.Before(nb.Add(-time.Second)) {
			t.Fatalf("NotBefore %v, want about an hour before %v", leaf.NotBefore, before)
		}
		if d := leaf.NotAfter.Sub(before); d < 24*time.Hour-time.Second || d > 24*time.Hour+time.Minute {
			t.Fatalf("NotAfter %v after start, want 24h", d)
		}
		host, _ := os.Hostname()
		if leaf.Subject.String() != "CN=loopauth localhost" || (host != "" && leaf.Subject.CommonName == host) {
			t.Fatalf("subject %q", leaf.Subject)
		}
		if err := checkLeaf(leaf, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("X-02 serials random and 128-bit", func(t *testing.T) {
		seen := map[string]bool{}
		low := new(big.Int).Lsh(big.NewInt(1), 100)
		small := 0
		for i := 0; i < 1000; i++ {
			c, err := newSelfSignedCertificate()
			if err != nil {
				t.Fatal(err)
			}
			s := c.cert.Leaf.SerialNumber
			if s.Sign() <= 0 || s.BitLen() > 128 {
				t.Fatalf("serial %v", s)
			}
			if s.Cmp(low) < 0 {
				small++ // probability 2^-28 each
			}
			if seen[s.String()] {
				t.Fatalf("serial repeated after %d", i)
			}
			seen[s.String()] = true
		}
		if small > 1 {
			t.Fatalf("%d serials below 2^100", small)
		}
	})
	t.Run("X-03 key stays in memory", func(t *testing.T) {
		// By construction: newSelfSignedCertificate (certs.go) does no
		// file I/O. Check that generation leaves the temporary and home
		// directories untouched.
		tmp, home := t.TempDir(), t.TempDir()
		t.Setenv("TMPDIR", tmp)
		t.Setenv("HOME", home)
		if _, err := newSelfSignedCertificate(); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{tmp, home} {
			if entries, _ := os.ReadDir(d); len(entries) != 0 {
				t.Fatalf("%s: %d entries written", d, len(entries))
			}
		}
	})
	t.Run("handshake with a client trusting the leaf", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
			state := serveTLS(t, c, pool, name)
			if !state.PeerCertificates[0].Equal(leaf) {
				t.Fatal("other certificate served")
			}
		}
	})
}
