package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token returns an HS256 token for user, signed with secret and valid for
// ttl from now: {"sub": user, "iat": now, "exp": now+ttl}. A real
// application issues such tokens from its login service.
func Token(secret []byte, user string, ttl time.Duration, now time.Time) (string, error) {
	if user == "" {
		return "", errors.New("empty user id")
	}
	claims := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return s, nil
}
