package kv_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/regentkv/regent/kv"
)

func TestNormalizeKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"a", "a", true},
		{"/a/b", "a/b", true},
		{"a/b/", "a/b", true},
		{"/a/b/", "a/b", true},
		{"ünï/cödé", "ünï/cödé", true},
		{"a.b/..c/__x", "a.b/..c/__x", true},
		{"", "", false},
		{"/", "", false},
		{"//", "", false},
		{"//a", "", false},
		{"a//b", "", false},
		{"a/./b", "", false},
		{"a/..", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"a\x7fb", "", false},
		{"\xff", "", false},
		{"a\u00a0b", "", false}, // no-break space
		{"a\u200bb", "", false}, // zero width space
		{"a\ufeffb", "", false}, // byte order mark
		{"a\u0085b", "", false}, // C1 control
		{"a\ue000b", "", false}, // private use
		{"a\ufff0b", "", false}, // unassigned
		{"a b/日本/🙂/é/%", "a b/日本/🙂/é/%", true},
		{"a/__regent/b", "", false},
		{"__regentx", "", false},
		{strings.Repeat("k", kv.MaxKeySize), strings.Repeat("k", kv.MaxKeySize), true},
		{strings.Repeat("k", kv.MaxKeySize+1), "", false},
	} {
		got, err := kv.NormalizeKey(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q, nil", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%q) = %q, %v; want ErrInvalidKey", tc.in, got, err)
		}
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a/": "a", "/a/b": "a/b"} {
		if got, err := kv.NormalizePrefix(in); err != nil || got != want {
			t.Errorf("NormalizePrefix(%q) = %q, %v; want %q, nil", in, got, err, want)
		}
	}
	for _, in := range []string{"//", "a//", "a//b", "..", "a/__regent"} {
		if got, err := kv.NormalizePrefix(in); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("NormalizePrefix(%q) = %q, %v; want ErrInvalidKey", in, got, err)
		}
	}
}

func TestIsBelowAndDirPrefix(t *testing.T) {
	for _, tc := range []struct {
		key, prefix string
		want        bool
	}{
		{"a/b", "a", true}, {"a/b/c", "a", true}, {"a", "a", false}, {"ab", "a", false},
		{"ab/c", "a", false}, {"a", "", true}, {"", "", false},
	} {
		if got := kv.IsBelow(tc.key, tc.prefix); got != tc.want {
			t.Errorf("IsBelow(%q, %q) = %v, want %v", tc.key, tc.prefix, got, tc.want)
		}
	}
	if kv.DirPrefix("a") != "a/" || kv.DirPrefix("") != "" {
		t.Errorf("DirPrefix: %q, %q", kv.DirPrefix("a"), kv.DirPrefix(""))
	}
}

func TestNormalizeKeyAllocatesNothingForCanonicalKeys(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = kv.NormalizeKey("config/app/replicas") }); n != 0 {
		t.Errorf("NormalizeKey of a canonical key allocates %v times, want 0", n)
	}
}

// FuzzNormalizeKey: never a panic; a valid result is canonical (idempotent)
// and free of the things the rules forbid.
func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"a/b", "/a/b/", "a//b", "..", "\xff", "a/__regent"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := kv.NormalizeKey(in)
		if err != nil {
			if !errors.Is(err, kv.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q) error %v is not ErrInvalidKey", in, err)
			}
			return
		}
		if again, err := kv.NormalizeKey(k); err != nil || again != k {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, k, again, err)
		}
		if k == "" || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") || strings.Contains(k, "//") ||
			!utf8.ValidString(k) || len(k) > kv.MaxKeySize || strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("NormalizeKey(%q) = %q is not canonical", in, k)
		}
	})
}

func TestCheckValueAndWriteOptions(t *testing.T) {
	if err := kv.CheckValue(nil); !errors.Is(err, kv.ErrNilValue) {
		t.Errorf("CheckValue(nil) = %v", err)
	}
	if err := kv.CheckValue(make([]byte, kv.MaxValueSize+1)); !errors.Is(err, kv.ErrValueTooLarge) {
		t.Errorf("CheckValue(too large) = %v", err)
	}
	if err := kv.CheckValue([]byte{}); err != nil {
		t.Errorf("CheckValue(empty) = %v", err)
	}
	var te *kv.TTLError
	if err := kv.CheckWriteOptions(&kv.WriteOptions{TTL: 500}, 1000); !errors.As(err, &te) || te.Min != 1000 {
		t.Errorf("TTL below minimum: %v", err)
	}
	if err := kv.CheckWriteOptions(&kv.WriteOptions{KeepAlive: true}, 0); !errors.Is(err, kv.ErrInvalidTTL) {
		t.Errorf("KeepAlive without TTL: %v", err)
	}
	if err := kv.CheckWriteOptions(&kv.WriteOptions{TTL: -1}, 0); !errors.Is(err, kv.ErrInvalidTTL) {
		t.Errorf("negative TTL: %v", err)
	}
}
