package loopauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// This file holds the two readers every untrusted input goes through: one
// size-capped body reader and one strict JSON decoder. Discovery, JWKS,
// token responses, stores and JWS headers all use them, so there is exactly
// one place where "how much" and "how strictly" are decided.

// readCapped reads at most limit bytes from r. A body longer than limit is
// an error wrapping ErrResponseTooLarge, never a silently truncated value.
// The cap applies to what the caller sees, so a gzip body that net/http
// decompresses transparently is measured after decompression.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrResponseTooLarge, limit)
	}
	return data, nil
}

// errJSON is the cause behind every strict-JSON failure. It is unexported:
// callers see the sentinel of the document they were reading
// (ErrInvalidTokenResponse, ...) with this text after it.
var errJSON = errors.New("invalid JSON")

// checkStrictJSON accepts exactly one JSON value that is valid UTF-8, nests
// at most maxJSONDepth levels, has no duplicate member names in any object
// and no trailing data. encoding/json alone accepts duplicates (last one
// wins) and replaces invalid UTF-8 silently; both are parser differentials
// an attacker can use against a verifier.
func checkStrictJSON(data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not valid UTF-8", errJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// Each open object keeps the set of names seen so far; arrays push nil.
	var stack []map[string]struct{}
	expectKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errJSON, err)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return fmt.Errorf("%w: nested deeper than %d levels", errJSON, maxJSONDepth)
				}
				if t == '{' {
					stack = append(stack, map[string]struct{}{})
					expectKey = true
				} else {
					stack = append(stack, nil)
					expectKey = false
				}
				continue
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
			}
		case string:
			if expectKey {
				seen := stack[len(stack)-1]
				if _, dup := seen[t]; dup {
					return fmt.Errorf("%w: duplicate member %q", errJSON, truncate(t, 64))
				}
				seen[t] = struct{}{}
				expectKey = false
				continue
			}
		}
		if len(stack) == 0 {
			// A complete top-level value: anything after it is trailing data.
			if _, err := dec.Token(); err != io.EOF {
				return fmt.Errorf("%w: data after the top-level value", errJSON)
			}
			return nil
		}
		// After a value inside an object the next token is a member name.
		expectKey = stack[len(stack)-1] != nil
	}
	return fmt.Errorf("%w: empty document", errJSON)
}

// decodeStrictJSON checks data with checkStrictJSON and then decodes the
// top-level object into v, a pointer to a struct. Member names must match
// the struct's json tags exactly: encoding/json matches case-insensitively,
// so {"Access_Token": ...} would otherwise fill AccessToken. Members that
// match no field are ignored (RFC 6749 §5.1: unknown names MUST be ignored).
func decodeStrictJSON(data []byte, v any) error {
	if err := checkStrictJSON(data); err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil || members == nil {
		return fmt.Errorf("%w: not a JSON object", errJSON)
	}
	tags := jsonTags(reflect.TypeOf(v).Elem())
	for name := range members {
		if _, exact := tags[name]; exact {
			continue
		}
		for tag := range tags {
			if strings.EqualFold(name, tag) {
				return fmt.Errorf("%w: member %q differs in case from %q", errJSON, truncate(name, 64), tag)
			}
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", errJSON, err)
	}
	return nil
}

// jsonTags lists the JSON member names of a struct type's fields.
func jsonTags(t reflect.Type) map[string]struct{} {
	tags := make(map[string]struct{}, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			tags[name] = struct{}{}
		}
	}
	return tags
}

// truncate shortens s to at most n bytes (on a rune boundary) for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// isVSCHAR reports whether s is non-empty and made only of RFC 6749
// Appendix A VSCHAR (%x20-7E), the syntax of codes, states and tokens.
// It keeps CR/LF and other control bytes out of headers and logs.
func isVSCHAR(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isNQCHAR reports whether s is a valid RFC 6749 Appendix A scope token:
// %x21 / %x23-5B / %x5D-7E (no space, quote or backslash).
func isNQCHAR(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// sanitizeText makes provider-supplied text safe to put in an error string
// or on a terminal: control characters (ESC, CR, LF, BEL...), Unicode
// format characters such as the right-to-left override, and invalid UTF-8
// are replaced by U+FFFD, and the result is cut to max bytes.
func sanitizeText(s string, max int) string {
	var b strings.Builder
	for _, r := range truncate(s, max) {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidiOrFormat(r) {
			b.WriteRune('\uFFFD')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isBidiOrFormat reports the invisible characters that can make a terminal
// or page show something other than what was received (Trojan Source).
func isBidiOrFormat(r rune) bool {
	switch {
	case r >= 0x200b && r <= 0x200f, // zero-width, LRM, RLM
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // isolates
		r == 0xfeff:
		return true
	}
	return false
}

// Limits on untrusted input. Each is far above what real providers and
// browsers send (see doc.go for the table and the reasoning) and small
// enough that a hostile peer cannot make the library buffer or parse
// megabytes on its behalf.
const (
	maxTokenResponseBytes  = 1 << 20   // token endpoint answer, after gzip
	maxJSONDepth           = 32        // nesting of any JSON document
	maxCallbackHeaderBytes = 64 << 10  // request line + headers; cookies of other localhost apps fit
	maxCallbackQueryBytes  = 16 << 10  // raw query of a callback request
	maxCallbackParams      = 16        // parameters in a callback query
	maxCodeBytes           = 8 << 10   // authorization code
	maxErrorCodeBytes      = 64        // RFC 6749 error code
	maxErrorDescription    = 512       // error_description kept in errors and pages
	maxErrorURIBytes       = 2 << 10   // error_uri
	maxInvalidCallbacks    = 64        // wrong-state requests before the flow gives up
	maxCallbackConns       = 16        // concurrent connections to the callback server
	maxExpiresIn           = 315360000 // ten years, in seconds: no time.Duration overflow
	maxAuthURLBytes        = 8 << 10   // longer URLs are printed, not passed to an opener (Windows limits)
)
