package abi

import "strings"

// Closest returns the candidate nearest to name by edit distance, ignoring
// case, or "" when none is close enough to be a plausible typo (more than
// half of name's length plus one edits away). Ties go to the earlier
// candidate, so the answer is deterministic for a fixed candidate order.
// Every "did you mean" in ringfence comes from here.
func Closest(name string, candidates []string) string {
	best, bestD := "", len(name)/2+2
	ln := strings.ToLower(name)
	for _, c := range candidates {
		if d := editDistance(ln, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// DidYouMean returns "; did you mean X?" for the candidate Closest picks,
// or "" when there is none, ready to append to an error message.
func DidYouMean(name string, candidates []string) string {
	if s := Closest(name, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent characters
// each cost 1, so "jqe" is as close to "jeq" as "jne" is.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
