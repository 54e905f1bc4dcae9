package zookeeper

import (
	"strings"
	"unicode/utf8"
)

// ZooKeeper's server refuses znode names with characters that Java stores
// as surrogates or private-use code units (every rune above U+FFFF, emoji
// included, and U+D800..U+F8FF), U+007F..U+009F and U+FFF0..U+FFFF. kv
// keys allow them, so those runes, and '%' itself, are percent-encoded
// byte by byte in znode names. Keys without them map unchanged, without
// allocating.

func needsEscape(r rune) bool {
	return r == '%' || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0
}

func escapeKey(k string) string {
	i := strings.IndexFunc(k, needsEscape)
	if i < 0 {
		return k
	}
	var b strings.Builder
	b.Grow(len(k) + 16)
	b.WriteString(k[:i])
	for _, r := range k[i:] {
		if !needsEscape(r) {
			b.WriteRune(r)
			continue
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		for _, c := range buf[:n] {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	return b.String()
}

func unescapeKey(k string) string {
	if strings.IndexByte(k, '%') < 0 {
		return k
	}
	b := make([]byte, 0, len(k))
	for i := 0; i < len(k); i++ {
		if k[i] == '%' && i+2 < len(k) {
			b = append(b, unhex(k[i+1])<<4|unhex(k[i+2]))
			i += 2
			continue
		}
		b = append(b, k[i])
	}
	return string(b)
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}
