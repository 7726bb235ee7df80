// Command gen writes kiln's malicious-layer corpus (see internal/corpus) into the given dir.
package main

import (
	"fmt"
	"os"

	"github.com/kiln-build/kiln/internal/corpus"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen DIR")
		os.Exit(2)
	}
	if err := corpus.Generate(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
