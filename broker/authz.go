package broker

import (
	"fmt"

	"github.com/sngate/sngate/broker/auth"
)

// policy is the authentication and authorisation state, swapped as a
// whole by Reload and SetAuth.
type policy struct {
	users      *auth.Users // nil: no password file
	acl        *auth.ACL   // nil: no ACL, everything allowed
	allowAnon  bool
	certAsUser bool
}

func loadPolicy(cfg Config) (*policy, error) {
	p := &policy{allowAnon: cfg.AllowAnonymous, certAsUser: cfg.CertAsUsername}
	if cfg.PasswordFile != "" {
		u, err := auth.LoadPasswordFile(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		p.users = u
	}
	if cfg.ACLFile != "" {
		a, err := auth.LoadACLFile(cfg.ACLFile)
		if err != nil {
			return nil, err
		}
		p.acl = a
	}
	return p, nil
}

// authenticate checks a client's credentials and returns its user name.
func (p *policy) authenticate(info ConnectInfo) (string, error) {
	if p.certAsUser && info.CertSubject != "" {
		return info.CertSubject, nil
	}
	if info.Authenticated { // the front end vouches for the client
		return info.Username, nil
	}
	if info.Username == "" {
		if !p.allowAnon {
			return "", fmt.Errorf("client %q: anonymous access: %w", info.ClientID, ErrNotAuthorized)
		}
		return "", nil
	}
	if p.users == nil {
		if !p.allowAnon {
			return "", fmt.Errorf("client %q: no password file: %w", info.ClientID, ErrNotAuthorized)
		}
		return info.Username, nil // nothing to check against, like anonymous
	}
	if !p.users.Check(info.Username, info.Password) {
		return "", fmt.Errorf("client %q user %q: %w", info.ClientID, info.Username, ErrBadCredentials)
	}
	return info.Username, nil
}

func (p *policy) canPublish(clientID, username, topic string) bool {
	return p.acl == nil || p.acl.CanPublish(clientID, username, topic)
}

func (p *policy) canSubscribe(clientID, username, filter string) bool {
	return p.acl == nil || p.acl.CanSubscribe(clientID, username, filter)
}

// Reload re-reads Config.PasswordFile and Config.ACLFile and swaps both in
// at once (for SIGHUP). Connected sessions stay; the new rules apply to
// later connects, publishes, wills and subscriptions (existing
// subscriptions are kept). On error nothing changes.
func (srv *Server) Reload() error {
	p, err := loadPolicy(srv.cfg)
	if err != nil {
		return fmt.Errorf("broker: reload: %w", err)
	}
	srv.policy.Store(p)
	srv.log.Info("authentication and ACL reloaded")
	return nil
}

// SetAuth replaces the users (nil: no password file) and the ACL (nil:
// allow everything) at once, keeping the anonymous and certificate
// settings of the Config. It is the programmatic form of Reload.
func (srv *Server) SetAuth(users *auth.Users, acl *auth.ACL) {
	old := srv.policy.Load()
	srv.policy.Store(&policy{users: users, acl: acl, allowAnon: old.allowAnon, certAsUser: old.certAsUser})
}
