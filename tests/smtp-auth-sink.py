#!/usr/bin/python3
"""smtp-auth-sink.py -- an SMTP sink that requires AUTH, for tests/check_mail.c.

usage: /usr/bin/python3 smtp-auth-sink.py PORT MAILDIR USER PASSWORD

Listens on 127.0.0.1:PORT with aiosmtpd, offers AUTH PLAIN and LOGIN
without TLS, accepts only USER/PASSWORD, refuses MAIL from a session
that has not authenticated, and stores every message in the Maildir
MAILDIR.  Runs until SIGTERM or SIGINT.
"""
import signal
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port = int(sys.argv[1])
    maildir = sys.argv[2]
    user = sys.argv[3].encode()
    password = sys.argv[4].encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and
              auth_data.login == user and auth_data.password == password)
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False)

    warnings.simplefilter("ignore")     # AUTH without TLS, on purpose
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    controller = Controller(Mailbox(maildir), hostname="127.0.0.1",
                            port=port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        while True:
            signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
