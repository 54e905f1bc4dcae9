package kv

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeySize is the longest normalised key accepted, in bytes.
const MaxKeySize = 1024

// ReservedSegmentPrefix starts the names drivers use for their internal keys
// (lock contenders, sessions). No user key may contain a segment that starts
// with it, so internal keys can never collide with, or be listed among, user
// keys.
const ReservedSegmentPrefix = "__regent"

// NormalizeKey checks key and returns its canonical form: segments joined by
// single slashes, without leading or trailing slash ("/a/b/" -> "a/b").
//
// A key is invalid (ErrInvalidKey) when it is empty or only slashes, has an
// empty segment ("a//b"), a "." or ".." segment, a segment starting with
// ReservedSegmentPrefix, invalid UTF-8, or a character that is not
// printable (unicode.IsPrint: control, format and invisible characters such
// as U+200B or U+FEFF, spaces other than U+0020, private-use, surrogate and
// unassigned code points), or is longer than MaxKeySize. Valid keys in
// canonical form are returned without allocating.
//
// Printable characters only, because a key that looks like another but is
// not is a bug waiting to happen, and because Consul's HTTP API refuses
// every other character in a path (so such keys could be written through
// its transaction endpoint but never read). A Consul server built with a Go
// whose Unicode tables predate this module's may still refuse characters
// assigned since.
func NormalizeKey(key string) (string, error) {
	k, err := normalize(key)
	if err != nil {
		return "", err
	}
	if k == "" {
		return "", fmt.Errorf("%w: empty key %q", ErrInvalidKey, key)
	}
	return k, nil
}

// NormalizePrefix is NormalizeKey for a prefix (a directory): the same rules,
// except that "" and "/" are valid and name the root of the store, returned
// as "".
func NormalizePrefix(prefix string) (string, error) {
	return normalize(prefix)
}

func normalize(key string) (string, error) {
	k := strings.TrimPrefix(key, "/")
	k = strings.TrimSuffix(k, "/")
	if len(k) > MaxKeySize {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(k), MaxKeySize)
	}
	if k == "" {
		if len(key) > 1 { // "//": an empty segment, not the root
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
		}
		return "", nil
	}
	if !utf8.ValidString(k) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, key)
	}
	start := 0
	for i := 0; i <= len(k); i++ {
		if i < len(k) {
			c := k[i]
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidKey, key)
			}
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(k[i:])
				if !unicode.IsPrint(r) {
					return "", fmt.Errorf("%w: %q contains %U, which is not a printable character", ErrInvalidKey, key, r)
				}
				i += size - 1
				continue
			}
			if c != '/' {
				continue
			}
		}
		seg := k[start:i]
		switch {
		case seg == "":
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, ReservedSegmentPrefix):
			return "", fmt.Errorf("%w: %q uses the reserved segment prefix %q", ErrInvalidKey, key, ReservedSegmentPrefix)
		}
		start = i + 1
	}
	return k, nil
}

// IsBelow reports whether the normalised key lies strictly below the
// normalised prefix: "a/b" is below "a" and below the root "", "ab" and "a"
// are not below "a".
func IsBelow(key, prefix string) bool {
	if prefix == "" {
		return key != ""
	}
	return len(key) > len(prefix) && key[len(prefix)] == '/' && strings.HasPrefix(key, prefix)
}

// DirPrefix returns the byte prefix that every key strictly below the
// normalised prefix starts with: "a" -> "a/", "" -> "". Drivers use it for
// range scans so that "ab/c" never matches "a".
func DirPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}
