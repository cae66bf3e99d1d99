// Command corazabench measures patchgate's HTTP inspection against Coraza on
// the shipped HTTP patches' requests and a benign mix, and writes the report
// as JSON (for the bench runner's report).
//
//	go run ./cmd/corazabench -patches ../../patches/http -o coraza.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	corazabench "github.com/patchgate/patchgate/bench/coraza"
	"github.com/patchgate/patchgate/bench/waf"
)

func main() {
	dir := flag.String("patches", "", "HTTP patch directory (default: patches/http above the current directory)")
	out := flag.String("o", "-", "output file (- is standard output)")
	benign := flag.Int("benign", 200, "size of the benign request mix")
	flag.Parse()
	if err := run(*dir, *out, *benign); err != nil {
		fmt.Fprintln(os.Stderr, "corazabench:", err)
		os.Exit(1)
	}
}

func run(dir, out string, benign int) error {
	if dir == "" {
		var err error
		if dir, err = waf.CatalogDir(); err != nil {
			return err
		}
	}
	rep, err := corazabench.Run(dir, benign)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if out == "-" {
		_, err = os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
