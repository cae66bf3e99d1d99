package traffic

import (
	"io"
	"testing"
)

// BenchmarkGenerate measures generation speed: 10k flows of the default mix
// (every exploit and look-alike once) written to io.Discard. It reports
// flows/s and, through SetBytes, MB/s of frame bytes.
func BenchmarkGenerate(b *testing.B) {
	catalog := loadCatalog(b)
	o := DefaultOptions()
	o.Patches, o.Writer = catalog, io.Discard
	var res *Result
	for i := 0; i < b.N; i++ {
		var err error
		if res, err = Generate(o); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(res.Bytes)
	b.ReportMetric(float64(o.Flows)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(res.Packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
