package traffic

import "math"

// rng is a SplitMix64 generator: fully specified, so a seed yields the same
// capture on every Go release (math/rand makes no such promise).
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n); n must be positive.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.intn(hi-lo+1)
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// logUniform returns a size in [lo, hi] whose logarithm is uniform: as many
// sizes between 10 and 20 KB as between 50 and 100 KB, the usual shape of
// object-size distributions over a decade.
func (r *rng) logUniform(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	l, h := math.Log(float64(lo)), math.Log(float64(hi))
	v := int(math.Exp(l + r.float()*(h-l)))
	return min(max(v, lo), hi)
}

// geometric returns 1 + a geometric number of extra trials with the given
// mean (>= 1), capped at max.
func (r *rng) geometric(mean float64, max int) int {
	if mean <= 1 {
		return 1
	}
	p := 1 / mean // success probability per trial
	n := 1
	for n < max && !r.chance(p) {
		n++
	}
	return n
}

// weighted picks an index with probability proportional to w[i].
func (r *rng) weighted(w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := r.float() * total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}
