package manifest

import (
	"errors"
	"io"
)

// Stdin is the file name that stands for standard input, as in `kubectl apply -f -`.
const Stdin = "-"

// Files reads manifest files where "-" is In. Standard input can be read once only, so the
// second "-" of one command (say --cluster - and a pod file -) is an error, not an empty file.
type Files struct {
	In   io.Reader
	used bool
}

// Read reads every object of path, or of In when path is "-" (Source "stdin#N").
func (f *Files) Read(path string) ([]Object, error) {
	if path != Stdin {
		return ReadFile(path)
	}
	in, err := f.stdin()
	if err != nil {
		return nil, err
	}
	return Read(in, "stdin")
}

// stdin returns In the first time it is asked for, and an error after that.
func (f *Files) stdin() (io.Reader, error) {
	if f == nil || f.In == nil {
		return nil, errors.New(`"-" (standard input) is not available here`)
	}
	if f.used {
		return nil, errors.New(`"-" (standard input) given twice: only one file can come from standard input`)
	}
	f.used = true
	return f.In, nil
}
