package apitoken

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestNewTokensAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, err := New(APIPrefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok.Secret) != Len || !strings.HasPrefix(tok.Secret, APIPrefix) {
			t.Fatalf("token %q: want %d characters starting %q", tok.Secret, Len, APIPrefix)
		}
		if err := Check(APIPrefix, tok.Secret); err != nil {
			t.Fatalf("Check(%q) = %v", tok.Secret, err)
		}
		if tok.Hash != sha256.Sum256([]byte(tok.Secret)) || tok.Hash != Hash(tok.Secret) {
			t.Fatal("hash is not the SHA-256 of the secret")
		}
		if !strings.HasPrefix(tok.Secret, tok.Display) || len(tok.Display) != displayLen {
			t.Fatalf("display %q of %q", tok.Display, tok.Secret)
		}
		if seen[tok.Secret] {
			t.Fatalf("token %q made twice", tok.Secret)
		}
		seen[tok.Secret] = true
	}
}

func TestZeroAndMaxEntropyRoundTrip(t *testing.T) {
	for _, b := range []byte{0x00, 0xff} {
		tok, err := New(AdminPrefix, bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(AdminPrefix, tok.Secret); err != nil {
			t.Fatalf("Check(%q) = %v", tok.Secret, err)
		}
	}
}

func TestCheckRefusesMalformed(t *testing.T) {
	good, err := New(APIPrefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, s := range map[string]string{
		"empty":          "",
		"wrong prefix":   AdminPrefix + good.Secret[4:],
		"short":          good.Secret[:Len-1],
		"long":           good.Secret + "0",
		"bad character":  good.Secret[:10] + "-" + good.Secret[11:],
		"typo in body":   flip(good.Secret, 20),
		"typo in sum":    flip(good.Secret, Len-1),
		"prefix only":    APIPrefix,
		"non-ascii body": good.Secret[:10] + "é" + good.Secret[12:],
	} {
		if err := Check(APIPrefix, s); err != ErrMalformed {
			t.Errorf("%s: Check(%q) = %v, want ErrMalformed", name, s, err)
		}
	}
}

func TestNewRefusesBadPrefix(t *testing.T) {
	if _, err := New("gatehouse_", nil); err == nil {
		t.Fatal("New accepted a prefix of the wrong length")
	}
}

func FuzzCheck(f *testing.F) {
	tok, _ := New(APIPrefix, nil)
	f.Add(tok.Secret)
	f.Add("gth_")
	f.Fuzz(func(t *testing.T, s string) {
		if Check(APIPrefix, s) == nil && (len(s) != Len || !strings.HasPrefix(s, APIPrefix)) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	tok, _ := New(APIPrefix, nil)
	b.ReportAllocs()
	for b.Loop() {
		if Check(APIPrefix, tok.Secret) != nil {
			b.Fatal("refused")
		}
	}
}
