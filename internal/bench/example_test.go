package bench_test

import (
	"os"

	"github.com/ringfence/ringfence/internal/bench"
)

// Summarize the samples a guest printed into ratios against the baseline.
func ExampleSummarize() {
	samples, _ := bench.ParseSamples(`SAMPLE nop unconfined 1 1000
SAMPLE nop default 1 950
SAMPLE nop unconfined 2 1200
SAMPLE nop default 2 1200`)
	bench.WriteTable(os.Stdout, bench.Summarize(samples))
	// Output:
	// | workload | profile | median | ratio to unconfined (median) | spread (min-max) | rounds |
	// | --- | --- | --- | --- | --- | --- |
	// | nop | unconfined | 1100 requests/s | 1.000 | 1.000-1.000 | 2 |
	// | nop | default | 1075 requests/s | 0.975 | 0.950-1.000 | 2 |
}
