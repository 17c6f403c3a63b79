// Command noteverify checks a C2SP signed note with golang.org/x/mod/sumdb/note,
// the Go reference implementation of signed notes, which knows nothing of
// ZSL: a generic verifier for tests/tests/evidence.rs.
//
// Usage: noteverify NOTE_FILE QUORUM VKEY...
//
// Exit 0 when at least QUORUM of the given keys signed the note (lines by
// other keys are ignored, as the spec requires); 2 when the note does not
// open (a known key's bad signature, malformed); 3 when too few signed.
// Built in GOPATH mode against Debian's golang-golang-x-mod-dev.
package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: noteverify NOTE_FILE QUORUM VKEY...")
		os.Exit(1)
	}
	msg, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	quorum, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "quorum:", err)
		os.Exit(1)
	}
	var verifiers []note.Verifier
	for _, k := range os.Args[3:] {
		v, err := note.NewVerifier(k)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vkey:", err)
			os.Exit(1)
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fmt.Println("does not open:", err)
		os.Exit(2)
	}
	fmt.Printf("verified %d, unknown %d, quorum %d\n", len(n.Sigs), len(n.UnverifiedSigs), quorum)
	if len(n.Sigs) < quorum {
		os.Exit(3)
	}
}
