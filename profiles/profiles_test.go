package profiles

import (
	"strings"
	"testing"
)

func TestListHasRequiredProfiles(t *testing.T) {
	want := []string{"base", "default", "deny-all", "network-server", "postgresql", "storage"}
	got := Names()
	have := map[string]bool{}
	for _, n := range got {
		have[n] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("profile %q missing; have %v", w, got)
		}
	}
	if !have[DefaultName] {
		t.Errorf("DefaultName %q is not a profile", DefaultName)
	}
}

func TestEveryProfileHasSummaryAndComments(t *testing.T) {
	for _, info := range List() {
		if info.Summary == "" {
			t.Errorf("%s: first line must be \"# %s: SUMMARY\"", info.Name, info.Name)
		}
		data, err := Get(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, word := range []string{"Allows", "Denies"} {
			if !strings.Contains(text, word) {
				t.Errorf("%s: comments must say what it %s", info.Name, strings.ToLower(word))
			}
		}
	}
}

func TestGetUnknown(t *testing.T) {
	for _, name := range []string{"", "nope", "../profiles", "default.yaml"} {
		_, err := Get(name)
		if err == nil {
			t.Errorf("Get(%q) succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "default") {
			t.Errorf("Get(%q) error %q does not list the known profiles", name, err)
		}
	}
}
