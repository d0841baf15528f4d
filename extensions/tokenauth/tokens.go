package tokenauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// LoadTokens reads a token list file: either a JSON object mapping each
// token to its user id,
//
//	{"9f2c…": "alice", "77ab…": "bob"}
//
// or text with one "TOKEN USER" pair a line (blank lines and lines starting
// with # are skipped).
func LoadTokens(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenauth: token list: %w", err)
	}
	tokens, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("tokenauth: token list %s: %w", path, err)
	}
	return tokens, nil
}

// ParseTokens parses the content of a token list file (see LoadTokens).
func ParseTokens(b []byte) (map[string]string, error) {
	tokens := map[string]string{}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if err := json.Unmarshal(t, &tokens); err != nil {
			return nil, fmt.Errorf("JSON token list: %w", err)
		}
		return tokens, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"TOKEN USER\", got %d fields", n, len(f))
		}
		if _, dup := tokens[f[0]]; dup {
			return nil, fmt.Errorf("line %d: duplicate token", n)
		}
		tokens[f[0]] = f[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading token list: %w", err)
	}
	return tokens, nil
}
