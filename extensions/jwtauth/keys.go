package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadPublicKey reads a PEM file holding an RSA or ECDSA public key (a
// "PUBLIC KEY", an "RSA PUBLIC KEY" or a "CERTIFICATE" block), for
// Config.PublicKey.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: public key: %w", err)
	}
	key, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: public key %s: %w", path, err)
	}
	return key, nil
}

// ParsePublicKey parses the first PEM block of pemBytes as an RSA or ECDSA
// public key (see LoadPublicKey).
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	if _, err := methodsFor(key); err != nil {
		return nil, err
	}
	return key, nil
}

// methodsFor returns the signing algorithms accepted with key: HS* for a
// secret, RS* for RSA, and for ECDSA the one matching its curve. Fixing
// them by key type closes algorithm-confusion attacks (such as an HS256
// token "signed" with the RSA public key).
func methodsFor(key any) ([]string, error) {
	switch k := key.(type) {
	case []byte:
		return []string{"HS256", "HS384", "HS512"}, nil
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	return nil, fmt.Errorf("unsupported key type %T (want an RSA or ECDSA public key)", key)
}
