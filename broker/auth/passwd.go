// Package auth holds sngate's broker credentials and access rules: a
// password file of bcrypt hashes ("user:hash" lines, like
// mosquitto_passwd's format) and an ACL file of topic rules per user name
// and client ID. It knows nothing of sessions; package broker consults it.
package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Users is a set of users and their bcrypt password hashes. It is safe
// for concurrent use and immutable once built, but for its cache of
// successful checks.
type Users struct {
	hashes map[string][]byte

	dummyOnce sync.Once
	dummy     []byte // hash compared for unknown users

	mu    sync.Mutex
	key   [32]byte
	cache map[[32]byte]struct{}
}

// maxCache bounds the cache of verified credentials.
const maxCache = 4096

// ErrBadPasswordFile reports a malformed password file.
var ErrBadPasswordFile = errors.New("auth: bad password file")

// CheckUsername validates a user name for the password file: non-empty,
// without ':' or line breaks.
func CheckUsername(user string) error {
	if user == "" || strings.ContainsAny(user, ":\r\n\x00") {
		return fmt.Errorf("auth: invalid user name %q (empty, or contains ':' or a line break)", user)
	}
	return nil
}

// ParsePasswords reads "user:bcrypt-hash" lines. Blank lines and lines
// starting with '#' are ignored.
func ParsePasswords(r io.Reader) (*Users, error) {
	u := &Users{hashes: make(map[string][]byte)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || CheckUsername(user) != nil {
			return nil, fmt.Errorf("%w: line %d: want user:hash", ErrBadPasswordFile, line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%w: line %d: user %q: not a bcrypt hash: %v", ErrBadPasswordFile, line, user, err)
		}
		u.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read password file: %w", err)
	}
	return u, nil
}

// LoadPasswordFile reads a password file.
func LoadPasswordFile(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	u, err := ParsePasswords(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// Len returns the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// Has reports whether user exists.
func (u *Users) Has(user string) bool {
	_, ok := u.hashes[user]
	return ok
}

// Check reports whether password is user's password. bcrypt is slow by
// design; a successful check is remembered (as a keyed hash, in memory
// only) so that a client reconnecting with the same credentials is
// accepted without paying for bcrypt again. An unknown user costs a
// bcrypt comparison too, so that timing does not reveal user names.
func (u *Users) Check(user string, password []byte) bool {
	hash, ok := u.hashes[user]
	if !ok {
		u.dummyOnce.Do(func() {
			cost := bcrypt.DefaultCost
			for _, h := range u.hashes {
				cost, _ = bcrypt.Cost(h)
				break
			}
			u.dummy, _ = bcrypt.GenerateFromPassword([]byte("sngate-no-such-user"), cost)
		})
		_ = bcrypt.CompareHashAndPassword(u.dummy, password)
		return false
	}
	key := u.cacheKey(user, hash, password)
	u.mu.Lock()
	_, hit := u.cache[key]
	u.mu.Unlock()
	if hit {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, password) != nil {
		return false
	}
	u.mu.Lock()
	if u.cache == nil || len(u.cache) >= maxCache {
		u.cache = make(map[[32]byte]struct{})
	}
	u.cache[key] = struct{}{}
	u.mu.Unlock()
	return true
}

func (u *Users) cacheKey(user string, hash, password []byte) [32]byte {
	u.mu.Lock()
	if u.key == [32]byte{} {
		_, _ = rand.Read(u.key[:])
	}
	key := u.key
	u.mu.Unlock()
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write(hash)
	m.Write([]byte{0})
	m.Write(password)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// DefaultCost is the bcrypt cost of HashPassword and SetPassword.
const DefaultCost = bcrypt.DefaultCost

// HashPassword returns the bcrypt hash of password at DefaultCost, for a
// password file line.
func HashPassword(password []byte) (string, error) {
	return HashPasswordCost(password, DefaultCost)
}

// HashPasswordCost returns the bcrypt hash of password at cost (4 to 31).
func HashPasswordCost(password []byte, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// SetPassword adds user to the password file at path, or updates the
// user's hash, keeping the other lines as they are. The file is created
// (mode 0600) if missing and replaced atomically.
func SetPassword(path, user string, password []byte) error {
	if err := CheckUsername(user); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return SetPasswordHash(path, user, hash)
}

// SetPasswordHash is SetPassword with a hash already computed (see
// HashPasswordCost).
func SetPasswordHash(path, user, hash string) error {
	if err := CheckUsername(user); err != nil {
		return err
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("auth: user %q: not a bcrypt hash: %w", user, err)
	}
	return rewrite(path, user, user+":"+hash)
}

// DeleteUser removes user from the password file at path. Removing a user
// that is not there is not an error.
func DeleteUser(path, user string) error {
	if err := CheckUsername(user); err != nil {
		return err
	}
	return rewrite(path, user, "")
}

// rewrite replaces user's line in the file with line (appending it if
// absent; deleting when line is "").
func rewrite(path, user, line string) error {
	old, err := os.ReadFile(path)
	mode := os.FileMode(0o600)
	switch {
	case err == nil:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("auth: %w", err)
	}
	var out bytes.Buffer
	done := false
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		t := strings.TrimSpace(l)
		if name, _, ok := strings.Cut(t, ":"); ok && t[0] != '#' && name == user {
			if !done && line != "" {
				out.WriteString(line + "\n")
			}
			done = true
			continue
		}
		out.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			out.WriteByte('\n')
		}
	}
	if !done && line != "" {
		out.WriteString(line + "\n")
	}
	return writeAtomic(path, out.Bytes(), mode)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".passwd-*")
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("auth: write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}
