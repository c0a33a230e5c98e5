/*
 * notify.h - telling systemd how the service is doing (sd_notify(3)'s
 * protocol) without libsystemd.
 *
 * Under Type=notify systemd sets NOTIFY_SOCKET to a datagram socket (a
 * path, or "@name" in the abstract namespace) and reads newline-separated
 * VAR=VALUE assignments from it: READY=1, RELOADING=1, STOPPING=1,
 * STATUS=... (systemd.service(5), sd_notify(3)). The protocol is one
 * sendto() of that text, stable and documented, so a few lines here save
 * the server a library (and the container image a package).
 */
#ifndef NET001_CMD_NOTIFY_H
#define NET001_CMD_NOTIFY_H

/*
 * Send state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. Returns
 * 1 when sent, 0 when there is no NOTIFY_SOCKET (not run by systemd, or
 * not Type=notify), -errno when it could not be sent (a malformed or
 * unsupported address: -EAFNOSUPPORT, -ENAMETOOLONG).
 */
int notify_send(const char *state);

#endif
