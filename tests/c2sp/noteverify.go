// Command noteverify checks a C2SP signed note with golang.org/x/mod/sumdb/note,
// the Go reference implementation of signed notes, which knows nothing of
// ZSL: a generic verifier for tests/tests/evidence.rs.
//
// Usage: noteverify NOTE_FILE QUORUM VKEY... [-- WITNESS_QUORUM COSIGNER_VKEY...]
//
// VKEYs are Ed25519 signed-note keys (type 0x01); COSIGNER_VKEYs are
// c2sp.org/tlog-cosignature Ed25519 keys (type 0x04), verified by the
// cosignature/v1 verifier below plugged into note.Open. Exit 0 when at
// least QUORUM of the VKEYs and WITNESS_QUORUM of the cosigners signed
// (lines by other keys are ignored, as the spec requires); 2 when the note
// does not open (a known key's bad signature, malformed); 3 when too few
// signed. Built in GOPATH mode against Debian's golang-golang-x-mod-dev.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// cosignatureV1 verifies Ed25519 cosignature/v1 lines: an 8-byte big-endian
// timestamp, then a signature of "cosignature/v1\ntime <t>\n" || note text.
type cosignatureV1 struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v cosignatureV1) Name() string    { return v.name }
func (v cosignatureV1) KeyHash() uint32 { return v.hash }
func (v cosignatureV1) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t >= 1<<63 {
		return false
	}
	m := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	return ed25519.Verify(v.key, m, sig[8:])
}

func newCosigner(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("not a vkey")
	}
	id, err := hex.DecodeString(parts[1])
	material, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || err2 != nil || len(id) != 4 || len(material) != 33 || material[0] != 0x04 {
		return nil, errors.New("not a cosignature/v1 vkey")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), material...))
	if string(h[:4]) != string(id) {
		return nil, errors.New("vkey key id does not match")
	}
	return cosignatureV1{parts[0], binary.BigEndian.Uint32(id), ed25519.PublicKey(material[1:])}, nil
}

func fail(code int, format string, a ...interface{}) {
	fmt.Printf(format+"\n", a...)
	os.Exit(code)
}

func main() {
	if len(os.Args) < 4 {
		fail(1, "usage: noteverify NOTE_FILE QUORUM VKEY... [-- WITNESS_QUORUM COSIGNER_VKEY...]")
	}
	msg, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(1, "%v", err)
	}
	quorum, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail(1, "quorum: %v", err)
	}
	var verifiers []note.Verifier
	logKeys := map[uint32]bool{}
	witnessQuorum := 0
	args := os.Args[3:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			if i+1 >= len(args) {
				fail(1, "-- needs WITNESS_QUORUM")
			}
			if witnessQuorum, err = strconv.Atoi(args[i+1]); err != nil {
				fail(1, "witness quorum: %v", err)
			}
			for _, k := range args[i+2:] {
				v, err := newCosigner(k)
				if err != nil {
					fail(1, "cosigner vkey: %v", err)
				}
				verifiers = append(verifiers, v)
			}
			break
		}
		v, err := note.NewVerifier(args[i])
		if err != nil {
			fail(1, "vkey: %v", err)
		}
		logKeys[v.KeyHash()] = true
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail(2, "does not open: %v", err)
	}
	logs, witnesses := 0, 0
	for _, s := range n.Sigs {
		if logKeys[s.Hash] {
			logs++
		} else {
			witnesses++
		}
	}
	fmt.Printf("verified %d (validators %d, witnesses %d), unknown %d\n", len(n.Sigs), logs, witnesses, len(n.UnverifiedSigs))
	if logs < quorum || witnesses < witnessQuorum {
		os.Exit(3)
	}
}
