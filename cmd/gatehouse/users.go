package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage user accounts",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	var (
		email         string
		roles         []string
		passwordStdin bool
		verified      bool
	)
	create := &cobra.Command{
		Use:   "create --email E [--role R]... [--password-stdin] [--verified]",
		Short: "Create an account and print its id",
		Long: "Create an account with the default role plus any --role given, and print its id.\n" +
			"Without --password-stdin a random password is generated and printed once on a second line.\n" +
			"Without --verified a verification email is sent as for a self-registered account.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return errors.New("--email is required")
			}
			generated := !passwordStdin
			password, err := readPassword(cmd.InOrStdin(), passwordStdin)
			if err != nil {
				return err
			}
			return withApp(cmd, func(a *app.App) error {
				u, err := a.Accounts.CreateUser(cmd.Context(), email, password, roles, verified)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintln(out, u.ID)
				if generated {
					fmt.Fprintln(out, password)
				}
				return nil
			})
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address (required)")
	create.Flags().StringArrayVar(&roles, "role", nil, "role to grant, repeatable (e.g. --role admin)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	create.Flags().BoolVar(&verified, "verified", false, "mark the email as verified (no verification email)")
	cmd.AddCommand(create, newUsersUnlockCmd())
	return cmd
}

func newUsersUnlockCmd() *cobra.Command {
	var email, id string
	unlock := &cobra.Command{
		Use:   "unlock (--email E | --id ID)",
		Short: "Unlock an account and print its id",
		Long: "Lift an administrator's lock and a temporary lockout from the account, forget its failed logins,\n" +
			"and print its id. Run by the operator, it may unlock anyone, administrators included: the way back\n" +
			"when every administrator is locked out, since through the API nobody unlocks a user holding a\n" +
			"permission they do not hold themselves.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (email == "") == (id == "") {
				return errors.New("give exactly one of --email and --id")
			}
			return withApp(cmd, func(a *app.App) error {
				ctx := cmd.Context()
				if email != "" {
					addr, err := gatehouse.ParseEmail(email)
					if err != nil {
						return fmt.Errorf("--email: %w", err)
					}
					u, err := a.DB.GetUserByEmail(ctx, addr)
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("no account has the email %s", addr)
					}
					if err != nil {
						return err
					}
					id = u.ID
				}
				// No actor: the operator, whom the API's rules do not bind.
				u, err := a.Accounts.Unlock(ctx, "", id)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), u.ID)
				return nil
			})
		},
	}
	unlock.Flags().StringVar(&email, "email", "", "the account's email address")
	unlock.Flags().StringVar(&id, "id", "", "the account's id")
	unlock.MarkFlagsMutuallyExclusive("email", "id")
	return unlock
}

func readPassword(in io.Reader, fromStdin bool) (string, error) {
	if !fromStdin {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: standard input had no password")
	}
	return line, nil
}
