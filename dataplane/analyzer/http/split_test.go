package http

import (
	"reflect"
	"testing"
)

// TestSegmentation checks that the events of every test conversation do not
// depend on how its bytes are cut into Feed calls: one byte per call gives the
// same records (deep-equal, violations and boundaries included) as one call per
// chunk.
func TestSegmentation(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			want := playWhole(t, tc.config(), tc.conv)
			got := playBytes(t, tc.config(), tc.conv)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("byte-wise feeding differs:\n%s", diffSummaries(want, got))
			}
		})
	}
}

// TestHandover checks flow checkpoints: for every split point k, feeding the
// first k bytes to one analyzer, exporting its state into a fresh analyzer and
// feeding the rest there gives the same records as one analyzer fed everything.
func TestHandover(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			want := playWhole(t, tc.config(), tc.conv)
			for k := 0; k <= totalLen(tc.conv); k++ {
				got := playHandover(t, tc.config(), tc.conv, k)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("handover at byte %d differs:\n%s", k, diffSummaries(want, got))
				}
			}
		})
	}
}
