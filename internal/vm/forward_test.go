package vm

import (
	"reflect"
	"testing"
)

func TestForwardedEnv(t *testing.T) {
	in := []string{"PATH=/bin", "RINGFENCE_KT_SEED=42", "RINGFENCE_IN_VM=1", "RINGFENCE_KT_CONTEXTS=3", "XRINGFENCE_KT_A=1"}
	want := []string{"RINGFENCE_KT_SEED=42", "RINGFENCE_KT_CONTEXTS=3"}
	if got := ForwardedEnv(in); !reflect.DeepEqual(got, want) {
		t.Errorf("ForwardedEnv = %q, want %q", got, want)
	}
	if got := ForwardedEnv(nil); got != nil {
		t.Errorf("ForwardedEnv(nil) = %q, want nil", got)
	}
}
