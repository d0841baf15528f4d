package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/bayou-pubsub/bayou/extensions/acl"
)

// applyConfigFile reads the JSON config file at path and sets, from its
// keys, the flags not in explicit (those set on the command line or in the
// environment). Keys are flag names; values are strings, numbers, booleans
// or, for the comma-separated flags, arrays of strings ("history" takes an
// array of objects, see historyRules.SetJSON). The key "acl" holds
// the access rules, returned as an acl.Config.
func applyConfigFile(path string, fs *flag.FlagSet, explicit map[string]bool) (*acl.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report problems in a stable order
	var rules *acl.Config
	for _, key := range keys {
		raw := file[key]
		if key == "acl" {
			if rules, err = decodeACL(raw); err != nil {
				return nil, fmt.Errorf("--config %s: %w", path, err)
			}
			continue
		}
		f := fs.Lookup(key)
		if f == nil || key == "config" || key == "version" {
			return nil, fmt.Errorf("--config %s: unknown setting %q", path, key)
		}
		if explicit[key] {
			continue
		}
		if js, ok := f.Value.(jsonSetter); ok {
			if err := js.SetJSON(raw); err != nil {
				return nil, fmt.Errorf("--config %s: %s: %w", path, key, err)
			}
			continue
		}
		v, err := flagText(raw)
		if err != nil {
			return nil, fmt.Errorf("--config %s: %s: %w", path, key, err)
		}
		if err := f.Value.Set(v); err != nil {
			return nil, fmt.Errorf("--config %s: %s=%q: %w", path, key, v, err)
		}
	}
	return rules, nil
}

// jsonSetter is a flag value that takes its config file value as JSON
// rather than as flag text (such as --history's array of objects).
type jsonSetter interface {
	SetJSON(raw json.RawMessage) error
}

// flagText turns a JSON value into the text a flag parses: a string as is,
// a number or boolean as written, an array of strings joined by commas.
func flagText(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("decoding: %w", err)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case []any:
		items := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || strings.Contains(s, ",") {
				return "", fmt.Errorf("array items must be strings without commas, got %v", e)
			}
			items = append(items, s)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or array of strings, got %s", raw)
}

// decodeACL decodes the config file's "acl" value.
func decodeACL(raw json.RawMessage) (*acl.Config, error) {
	rules := &acl.Config{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rules); err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	return rules, nil
}

// readACL reads the access rules of the config file at path again (on
// SIGHUP): nil when it has none. Its other settings are not read.
func readACL(path string) (*acl.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	raw, ok := file["acl"]
	if !ok {
		return nil, nil
	}
	rules, err := decodeACL(raw)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	return rules, nil
}
