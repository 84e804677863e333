package vminit

import (
	"reflect"
	"strings"
	"testing"
)

func TestMarkerRoundTrip(t *testing.T) {
	for _, m := range []Marker{
		{Kind: KindBoot, Release: "7.0.13+deb13-amd64", Filters: "yes"},
		{Kind: KindBoot, Release: "6.19.14+deb13-amd64", Filters: "error:EPERM"},
		{Kind: KindBegin, Name: "github.com/ringfence/ringfence/internal/kerneltest"},
		{Kind: KindEnd, Name: "pkg", Exit: 0},
		{Kind: KindEnd, Name: "pkg", Exit: 1},
		{Kind: KindEnd, Name: "pkg", Exit: -1, TimedOut: true},
		{Kind: KindDone},
		{Kind: KindTimeout},
		{Kind: KindError, Name: "read config: no such file"},
	} {
		s := m.String()
		if !strings.HasPrefix(s, MarkerPrefix) || strings.Contains(s, "\n") {
			t.Errorf("%+v formats as %q", m, s)
		}
		got, ok := ParseMarker(s)
		if !ok || !reflect.DeepEqual(got, m) {
			t.Errorf("ParseMarker(%q) = %+v, %v; want %+v", s, got, ok, m)
		}
	}
}

func TestParseMarkerRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"=== RUN   TestX",
		"=== RINGFENCE",
		"=== RINGFENCE BEGIN",
		"=== RINGFENCE BEGIN two words",
		"=== RINGFENCE END pkg",
		"=== RINGFENCE END pkg exit=x",
		"=== RINGFENCE END pkg exit=1 slow",
		"=== RINGFENCE DONE extra",
		"=== RINGFENCE BOOT release=7.0",
		"=== RINGFENCE WHAT",
		" === RINGFENCE DONE",
	} {
		if m, ok := ParseMarker(s); ok {
			t.Errorf("ParseMarker(%q) = %+v, want not a marker", s, m)
		}
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := Config{
		Release:    "7.3.4+deb13-amd64",
		TimeoutSec: 60,
		Env:        []string{"A=1"},
		Steps:      []Step{{Name: "p", Path: "/ringfence/bin/t0.test", Args: []string{"-test.v", "-test.run", "A B"}, Dir: "/src/p", TimeoutSec: 30, Env: []string{"B=2"}}},
	}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeConfig(b)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("DecodeConfig(Encode(c)) = %+v, %v; want %+v", got, err, c)
	}
	if _, err := DecodeConfig([]byte("{")); err == nil {
		t.Error("DecodeConfig accepted truncated JSON")
	}
}

func FuzzParseMarker(f *testing.F) {
	f.Add("=== RINGFENCE END pkg exit=1 timeout")
	f.Add("=== RINGFENCE BOOT release=7.0.4 filters=no")
	f.Add("=== RINGFENCE BEGIN x")
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := ParseMarker(s)
		if !ok {
			return
		}
		// What parses must print back to something that parses the same.
		again, ok := ParseMarker(m.String())
		if !ok || !reflect.DeepEqual(again, m) {
			t.Errorf("%q parses to %+v, which prints as %q and parses to %+v, %v", s, m, m.String(), again, ok)
		}
	})
}
