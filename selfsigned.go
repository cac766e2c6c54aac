package loopauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

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
