# The recipient portal, in English. Every message here exists in de, fr and
# es too (a unit test checks). Plain text: the pages escape it.

service-name = Secure message service
secure-connection = Secure page
footer-safety = This page never asks for a password, a PIN or card details.
footer-contact = If something looks wrong, contact { $sender } on a number or address you already know.
footer-neutral = If something looks wrong, contact the sender on a number or address you already know.

duration-under-a-minute = less than a minute
duration-seconds = { $n ->
        [one] 1 second
       *[other] { $n } seconds
    }
duration-minutes = { $n ->
        [one] 1 minute
       *[other] { $n } minutes
    }
duration-hours = { $n ->
        [one] 1 hour
       *[other] { $n } hours
    }
duration-days = { $n ->
        [one] 1 day
       *[other] { $n } days
    }

expired-title = This link has expired
expired-body = This link is no longer valid: it has expired or has been used as often as allowed.
expired-next = If you still need the message, ask the sender to send it again.
withdrawn-title = Message withdrawn
withdrawn-body = This message was withdrawn by the sender and can no longer be read.
locked-title = This link is locked
locked-body = A wrong verification code was entered too many times, so this link is locked until { $until } for your protection.
locked-next = Try again after that time. If you did not try to open this message, tell the sender.
too-many-codes-title = Too many codes requested
too-many-codes-body = As many verification codes as allowed have been sent for this link.
too-many-codes-next = Ask the sender to send the message again.
rate-limited-title = Please wait a moment
rate-limited-body = There were too many requests for this message in a short time. Please try again in { $wait }.
no-factor-title = This message cannot be opened here
no-factor-body = There is no phone number or e-mail address on file to send you a verification code.
no-factor-next = Please contact the sender.
not-sent-title = We could not send your code
not-sent-body = Sending your verification code failed. Please try again in a minute.
try-again = Try again
session-ended-title = Your session has ended
session-ended-body = For your protection, the message closes after a few minutes without activity, or when you close it.
open-again = Open it again with a new code
stale-title = This form is out of date
stale-body = The page was open too long or was sent twice.
start-again = Start again
continue = Continue
closed-title = Message closed
closed-body = You closed the message. You can close this window.
in-app-title = Open the app
in-app-body = This message was delivered to your app. Open the app on your phone to read it; the app shows how it is protected.
not-found-title = Page not found
not-found-body = There is no page here. Please use the link from your message notice.
not-allowed-title = Not available
not-allowed-body = This page cannot be used this way.
busy-title = Please try again
busy-body = The service is busy. Please reload this page in a moment.
failure-title = Something went wrong
failure-body = The message could not be shown. Please try again later.

start-title = Open your secure message
start-from = { $sender } sent you a secure message.
start-phone = To open it, we send a 6-digit verification code by text message to your phone { $to }.
start-email = To open it, we send a 6-digit verification code to your e-mail address { $to }.
start-why = The code makes sure that only you can read the message.
send-code = Send me a code
start-no-code = This message opens without a verification code.
open-message = Open the message

code-title = Enter your verification code
code-sent-phone = We sent a 6-digit verification code by text message to your phone { $to }. It is valid for { $valid }.
code-sent-email = We sent a 6-digit verification code to your e-mail address { $to }. It is valid for { $valid }.
code-wrong = That code is not correct. You have { $left ->
        [one] 1 try
       *[other] { $left } tries
    } left before this link locks.
code-expired = That code has expired. Ask for a new code below.
code-label = Verification code
code-hint = The 6 digits from the message we sent you.
no-code = No code? You can ask for a new one once a minute.
send-new-code = Send a new code

message-title = Secure message from { $sender }
security-heading = Protection
label-none = not encrypted
label-none-explain = It may have been readable to the carriers that handled it.
label-transport = provider-readable
label-transport-explain = It is encrypted in transit, but the sender and its service providers can read it.
label-e2ee = end-to-end encrypted
label-e2ee-explain = Only the recipient's verified devices can read it.
label-e2ee-attested = end-to-end encrypted, attested devices
from-label = From
opened-label = Opened
previous-access = Your previous access: { $at }.
first-access = This is your first access to a message here.
views-left = This is view { $view } of { $max }; { $left ->
        [one] 1 view
       *[other] { $left } views
    } left. The link expires { $expires }.
message-heading = Message
download = Download a copy
print-hint = To print, use your browser's print command.
close-message = Close the message
close-hint = Close the message when you are done, especially on a shared device.
