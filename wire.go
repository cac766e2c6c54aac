package loopauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
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
		return nil, errorf("%w (limit %d bytes)", ErrResponseTooLarge, limit)
	}
	return data, nil
}

// errJSON is the cause behind every strict-JSON failure. It is unexported:
// callers see the sentinel of the document they were reading
// (ErrInvalidTokenResponse, ...) with this text after it.
var errJSON = errors.New("invalid JSON")

// maxMembers is how many names decodeStrictMembers can look for.
const maxMembers = 20

// members holds the raw JSON values found by decodeStrictMembers, in the
// order of the names looked for; nil for a member that is absent.
type members [maxMembers][]byte

// decodeStrictMembers checks data like scanStrictJSON, requires an
// object, and returns the raw value of each top-level member named in
// names. A member whose name differs from one of names only in case is an
// error: encoding/json matches names case-insensitively (with Unicode
// folding, "\u212a" is a "k"), so a reader downstream could take
// {"Access_Token": ...} for access_token. Other members are ignored
// (RFC 6749 §5.1, RFC 7517 §4, Discovery §3: unknown names are ignored).
// Every document this package reads goes through here; it allocates
// nothing.
func decodeStrictMembers(data []byte, names []string) (members, error) {
	if len(names) > maxMembers {
		return members{}, errorf("%w: too many names", errJSON) // a bug, not input
	}
	kind, found, err := scanStrictJSON(data, names)
	if err == nil && kind != '{' {
		err = errorf("%w: not a JSON object", errJSON)
	}
	return found, err
}

// record keeps the value of a top-level member looked for, and refuses a
// case variant of one.
func (s *jsonScanner) record(name, value []byte) error {
	for i, want := range s.names {
		if string(name) == want {
			s.found[i] = value
			return nil
		}
	}
	if isFoldStable(name) {
		return nil // no other spelling can fold to a lower-case name
	}
	// A name that encoding/json or a case-insensitive reader would take
	// for one looked for.
	for _, want := range s.names {
		if strings.EqualFold(want, string(name)) {
			return errorf("%w: member %q differs in case from %q", errJSON, truncate(string(name), 64), want)
		}
	}
	return nil
}

// jsonString reads an optional JSON string value; absent and null are "".
// An escape-free string is sliced directly, the common case.
func jsonString(raw []byte) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if s, ok := jsonStringBytes(raw); ok {
		return string(s), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// jsonStringBytes returns the content of an escape-free JSON string
// without copying. JWS headers and JWK key material need no escapes and
// read their strings with it, which also keeps "\u0061lg"-style
// spellings out.
func jsonStringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// isFoldStable reports whether name is made of lower-case ASCII letters,
// digits and punctuation only. Such a name case-folds to no other byte
// string, so it can match a lower-case tag only by being equal to it.
func isFoldStable(name []byte) bool {
	for _, c := range name {
		if c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// jsonScanner is a strict, allocation-free RFC 8259 validator.
type jsonScanner struct {
	data  []byte
	pos   int
	depth int
	// names and found: see decodeStrictMembers.
	names []string
	found members
}

// scanStrictJSON accepts exactly one RFC 8259 JSON value that is valid
// UTF-8, nests at most maxJSONDepth levels, has no two member names in any
// object that are equal or differ only in case (compared after unescaping,
// under Unicode case folding) and no trailing data. encoding/json alone
// accepts duplicates (last one wins), matches names case-insensitively and
// replaces invalid UTF-8 silently; each is a parser differential an
// attacker can use against a verifier. The scanner is hand-written so that
// checking costs no allocation for ordinary documents. It returns the
// first byte of the top-level value ('{', '[', '"', 't', 'f', 'n' or a
// number's first byte) and, with names, the members decodeStrictMembers
// looks for.
func scanStrictJSON(data []byte, names []string) (byte, members, error) {
	if !utf8.Valid(data) {
		return 0, members{}, errorf("%w: not valid UTF-8", errJSON)
	}
	s := jsonScanner{data: data, names: names}
	s.skipSpace()
	if s.pos == len(data) {
		return 0, members{}, errorf("%w: empty document", errJSON)
	}
	kind := data[s.pos]
	if err := s.value(); err != nil {
		return 0, members{}, err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return 0, members{}, errorf("%w: data after the top-level value at offset %d", errJSON, s.pos)
	}
	return kind, s.found, nil
}

func (s *jsonScanner) fail(what string) error {
	return errorf("%w: %s at offset %d", errJSON, what, s.pos)
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *jsonScanner) value() error {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.elements(math.MaxInt, nil)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.fail("unexpected character")
}

func (s *jsonScanner) literal(lit string) error {
	if !strings.HasPrefix(string(s.data[s.pos:min(len(s.data), s.pos+len(lit))]), lit) {
		return s.fail("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

// number scans an RFC 8259 §6 number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() error {
	s.accept("-")
	ok := s.accept("0") || s.digits()
	if ok && s.accept(".") {
		ok = s.digits()
	}
	if ok && s.accept("eE") {
		s.accept("+-")
		ok = s.digits()
	}
	if !ok {
		return s.fail("invalid number")
	}
	return nil
}

// accept consumes the next byte if it is one of set.
func (s *jsonScanner) accept(set string) bool {
	if s.pos < len(s.data) && strings.IndexByte(set, s.data[s.pos]) >= 0 {
		s.pos++
		return true
	}
	return false
}

// digits consumes a run of digits and reports whether there was one.
func (s *jsonScanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// str scans a string and returns its raw content (between the quotes) and
// whether it holds escapes.
func (s *jsonScanner) str() (raw []byte, escaped bool, err error) {
	d := s.data
	start := s.pos + 1 // after the opening quote
	i := start
	for i < len(d) {
		c := d[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			i++ // the common case, kept in a tight loop
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return d[start:i], escaped, nil
		case c < 0x20:
			s.pos = i
			return nil, false, s.fail("control character in string")
		}
		escaped = true // c == '\\'
		i++
		if i >= len(d) {
			break
		}
		switch d[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+4 >= len(d) {
				s.pos = i
				return nil, false, s.fail("short unicode escape")
			}
			for _, h := range d[i+1 : i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					s.pos = i
					return nil, false, s.fail("invalid unicode escape")
				}
			}
			i += 5
		default:
			s.pos = i
			return nil, false, s.fail("invalid escape")
		}
	}
	s.pos = i
	return nil, false, s.fail("unterminated string")
}

// elements scans the array at s.pos. With fn, it calls fn with the raw
// bytes of each element, stops at the first error, and refuses more than
// max elements.
func (s *jsonScanner) elements(max int, fn func(elem []byte) error) error {
	if empty, err := s.open(']'); empty || err != nil {
		return err
	}
	for n := 1; ; n++ {
		if n > max {
			return errorf("%w: more than %d elements", errJSON, max)
		}
		s.skipSpace()
		start := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(s.data[start:s.pos]); err != nil {
				return err
			}
		}
		if end, err := s.next(']'); end || err != nil {
			return err
		}
	}
}

// open enters an object or array at s.pos, checking the depth limit, and
// consumes it whole if it is empty.
func (s *jsonScanner) open(closer byte) (empty bool, err error) {
	if s.depth++; s.depth > maxJSONDepth {
		return false, s.fail(fmt.Sprintf("nested deeper than %d levels", maxJSONDepth))
	}
	s.pos++ // { or [
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == closer {
		s.pos++
		s.depth--
		return true, nil
	}
	return false, nil
}

// next reads the separator after a member or element: "," to go on, or
// closer to end the object or array.
func (s *jsonScanner) next(closer byte) (end bool, err error) {
	s.skipSpace()
	switch {
	case s.pos >= len(s.data) && closer == '}':
		return false, s.fail("unterminated object")
	case s.pos >= len(s.data):
		return false, s.fail("unterminated array")
	case s.data[s.pos] == ',':
		s.pos++
		return false, nil
	case s.data[s.pos] == closer:
		s.pos++
		s.depth--
		return true, nil
	}
	return false, s.fail("expected , or " + string(closer))
}

// smallObject is how many member names an object may have before
// duplicate detection switches from pairwise comparison to a map.
const smallObject = 16

// Member names are compared under Unicode case folding, the comparison of
// bytes.EqualFold and of encoding/json's field matching: {"groups": [...],
// "GROUPS": [...]} is refused like an exact duplicate, or a reader using
// encoding/json (Claims.Unmarshal, a caller's own struct) would take the
// last of the two case-blindly where a case-sensitive reader takes the
// first. Up to smallObject names are compared pairwise, without
// allocation; larger objects index their folded names in a map, so the
// check stays linear however many members a document has.
func (s *jsonScanner) object() error {
	top := s.depth == 0
	if empty, err := s.open('}'); empty || err != nil {
		return err
	}
	var small [smallObject][]byte
	var big map[string][]byte // folded name -> name as sent
	n := 0
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.fail("expected a member name")
		}
		at := s.pos
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		name := raw
		if escaped {
			var u string
			if json.Unmarshal(s.data[at:s.pos], &u) != nil {
				return s.fail("invalid member name")
			}
			name = []byte(u)
		}
		if n < smallObject {
			for _, prev := range small[:n] {
				if bytes.EqualFold(prev, name) {
					return duplicateMember(prev, name)
				}
			}
			small[n] = name
		} else {
			var buf [64]byte
			if big == nil {
				big = make(map[string][]byte, 2*smallObject)
				for _, prev := range small {
					big[string(appendFolded(buf[:0], prev))] = prev
				}
			}
			key := appendFolded(buf[:0], name)
			if prev, dup := big[string(key)]; dup {
				return duplicateMember(prev, name)
			}
			big[string(key)] = name
		}
		n++
		s.skipSpace()
		if !s.accept(":") {
			return s.fail("expected :")
		}
		s.skipSpace()
		start := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if top && s.names != nil {
			if err := s.record(name, s.data[start:s.pos]); err != nil {
				return err
			}
		}
		if end, err := s.next('}'); end || err != nil {
			return err
		}
	}
}

// duplicateMember is the error of two member names of one object that are
// equal, or equal under case folding.
func duplicateMember(prev, name []byte) error {
	if bytes.Equal(prev, name) {
		return errorf("%w: duplicate member %q", errJSON, truncate(string(name), 64))
	}
	return errorf("%w: members %q and %q differ only in case", errJSON, truncate(string(prev), 64), truncate(string(name), 64))
}

// appendFolded appends to dst a key of name that is equal for two names
// exactly when bytes.EqualFold says they are: every rune becomes the
// smallest rune of its case-folding orbit ('K' for k, K and the Kelvin
// sign), as encoding/json folds names.
func appendFolded(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				r = next
				break
			}
			r = next
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst
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
	return isVSCHAR(s) && !strings.ContainsAny(s, ` "\\`)
}

// sanitizeText makes provider-supplied text safe to put in an error string
// or on a terminal: control characters (ESC, CR, LF, BEL...), Unicode
// format characters such as the right-to-left override, and invalid UTF-8
// are replaced by U+FFFD, and the result is cut to max bytes.
func sanitizeText(s string, max int) string {
	if len(s) <= max && isVSCHAR(s) {
		return s // printable ASCII, the common case: nothing to replace
	}
	var b strings.Builder
	for _, r := range truncate(s, max) {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidiOrFormat(r) {
			b.WriteRune('\uFFFD')
			continue
		}
		b.WriteRune(r)
	}
	// Replacements are longer than what they replace: cut again.
	return truncate(b.String(), max)
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
	maxCallbackConns       = 256       // open connections to the callback server; the longest-waiting one without a request in progress makes room for a newcomer
	maxExpiresIn           = 315360000 // ten years, in seconds: no time.Duration overflow
	maxAuthURLBytes        = 8 << 10   // longer URLs are printed, not passed to an opener (Windows limits)
)

// forEachJSONElement calls fn with the raw bytes of each element of raw, a
// JSON array already checked by scanStrictJSON, whose first byte is its
// '[' (a member value of decodeStrictMembers; the callers check that byte
// to say what the member should have been). It stops at the first error,
// and after max elements with an error.
func forEachJSONElement(raw []byte, max int, fn func(elem []byte) error) error {
	s := jsonScanner{data: raw}
	return s.elements(max, fn)
}

// jsonStrings reads an optional JSON array of strings of at most max
// elements; absent and null are nil, [] is empty and not nil. Its errors
// read after a member name: "scopes is not an array of strings".
func jsonStrings(raw []byte, max int) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, errNotStrings
	}
	out := []string{}
	err := forEachJSONElement(raw, max, func(elem []byte) error {
		if elem[0] != '"' {
			return errNotStrings
		}
		s, err := jsonString(elem)
		out = append(out, s)
		return err
	})
	if err != nil && err != errNotStrings {
		return nil, errorf("has more than %d entries", max)
	}
	return out, err
}

var errNotStrings = errors.New("is not an array of strings")
