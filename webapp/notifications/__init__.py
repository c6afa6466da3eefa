"""Notifications: who is told what happened, in the desk's inbox and (when configured) by e-mail.

`events.py` decides who gets which notification and words it (batch ids, counts and reasons
officers typed — never a data subject's identifier), `inbox.py` stores and reads them,
`preferences.py` keeps each person's e-mail choices (audited), and `mail.py` is the scheduler
tick that e-mails what is pending. The erasure and corrections domains call `events` in the
transaction of the change they report; nothing here waits for an SMTP server.
"""
