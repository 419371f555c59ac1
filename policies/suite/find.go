package suite

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Suffix names the files Find finds.
const Suffix = ".suite.yaml"

// Find returns the suite files under paths, in lexical order per path; hidden and testdata
// directories below them are skipped. A file given explicitly is taken whatever its name.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, root)
			continue
		}
		before := len(out)
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), Suffix) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == before {
			return nil, fmt.Errorf("no *%s files under %s", Suffix, root)
		}
	}
	return out, nil
}
