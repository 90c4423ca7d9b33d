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

	"github.com/gatehouse-auth/gatehouse/internal/app"
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
	cmd.AddCommand(create)
	return cmd
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
