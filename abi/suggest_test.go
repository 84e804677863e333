package abi

import "testing"

func TestClosest(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"AF_INTE", []string{"AF_INET", "AF_INET6", "AF_UNIX"}, "AF_INET"},
		{"af_inet6", []string{"AF_INET", "AF_INET6"}, "AF_INET6"}, // case is ignored
		{"jqe", []string{"jeq", "jne"}, "jeq"},                    // a swap costs 1; ties go first
		{"SOCKTE", []string{"SOCKET", "OPENAT"}, "SOCKET"},
		{"xyz", []string{"SOCKET", "OPENAT"}, ""}, // nothing close
		{"", nil, ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := DidYouMean("AF_INTE", []string{"AF_INET"}); got != "; did you mean AF_INET?" {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := DidYouMean("zzzzzz", []string{"AF_INET"}); got != "" {
		t.Errorf("DidYouMean of nothing close = %q", got)
	}
	if got := DidYouMean("O_CRAET", ConstNames(GroupOpen)); got != "; did you mean O_CREAT?" {
		t.Errorf("DidYouMean(O_CRAET, open flags) = %q", got)
	}
	if got := Closest("AF_INET", ConstNames(GroupOpen)); got == "AF_INET" {
		t.Errorf("ConstNames(GroupOpen) has names outside its group")
	}
	if got := Closest("AF_INTE", ConstNames("")); got != "AF_INET" {
		t.Errorf("Closest(AF_INTE, all constants) = %q", got)
	}
}
