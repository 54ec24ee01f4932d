#!/usr/bin/python3
"""sftp-kbdint-server.py -- an SFTP server that takes passwords only by
keyboard-interactive, for tests/check_sftp.c.

usage: /usr/bin/python3 sftp-kbdint-server.py PORT HOSTKEY USER PASSFILE [otp]

Listens on 127.0.0.1:PORT with asyncssh, host key HOSTKEY (an OpenSSH
private key file), offers only the keyboard-interactive method (no
password, no publickey), asks one unechoed "Password: " prompt and
accepts only USER with the first line of PASSFILE; with "otp", then
asks a second question, "Verification code: ", that no answer passes.
SFTP serves this
machine's file system as the user running it.  Runs until SIGTERM.
"""
import asyncio
import signal
import sys
import warnings

warnings.simplefilter("ignore")     # cryptography's deprecation notes
import asyncssh                     # noqa: E402


class KbdintOnly(asyncssh.SSHServer):
    def __init__(self, user, password, otp):
        self.user = user
        self.password = password
        self.otp = otp
        self.asked_otp = False

    def begin_auth(self, username):
        return True                 # every user must authenticate

    def password_auth_supported(self):
        return False

    def public_key_auth_supported(self):
        return False

    def kbdint_auth_supported(self):
        return True

    def get_kbdint_challenge(self, username, lang, submethods):
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username, responses):
        if self.asked_otp:
            return False
        ok = (username == self.user and len(responses) == 1 and
              responses[0] == self.password)
        if ok and self.otp:
            self.asked_otp = True
            return "", "", "", [("Verification code: ", False)]
        return ok


def main():
    port = int(sys.argv[1])
    hostkey = sys.argv[2]
    user = sys.argv[3]
    with open(sys.argv[4]) as f:
        password = f.readline().rstrip("\r\n")
    otp = len(sys.argv) > 5 and sys.argv[5] == "otp"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_until_complete(asyncssh.listen(
        "127.0.0.1", port, server_host_keys=[hostkey],
        server_factory=lambda: KbdintOnly(user, password, otp),
        sftp_factory=True, allow_scp=False))
    loop.run_forever()


if __name__ == "__main__":
    main()
