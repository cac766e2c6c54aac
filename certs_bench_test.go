package loopauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"testing"
)

// BenchmarkSelfSignedListener measures what UseHTTPS adds to a flow's
// start: a fresh certificate and a TLS listener on the loopback.
// Compare with BenchmarkRSAKeyGeneration2048 from the same run; the goal
// is at least 20 times cheaper.
func BenchmarkSelfSignedListener(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c, err := newSelfSignedCertificate()
		if err != nil {
			b.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", c.serverConfig())
		if err != nil {
			b.Fatal(err)
		}
		ln.Close()
	}
}

// BenchmarkRSAKeyGeneration2048 is the reference: what an RSA self-signed
// certificate would cost for its key alone.
func BenchmarkRSAKeyGeneration2048(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := rsa.GenerateKey(rand.Reader, 2048); err != nil {
			b.Fatal(err)
		}
	}
}
