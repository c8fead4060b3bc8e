# Das Empfängerportal, auf Deutsch. Reiner Text: die Seiten maskieren ihn.

service-name = Sicherer Nachrichtendienst
secure-connection = Sichere Seite
footer-safety = Diese Seite fragt nie nach einem Passwort, einer PIN oder Kartendaten.
footer-contact = Wenn Ihnen etwas seltsam vorkommt, wenden Sie sich an { $sender } über eine Nummer oder Adresse, die Sie bereits kennen.
footer-neutral = Wenn Ihnen etwas seltsam vorkommt, wenden Sie sich an den Absender über eine Nummer oder Adresse, die Sie bereits kennen.

duration-under-a-minute = weniger als einer Minute
duration-seconds = { $n ->
        [one] 1 Sekunde
       *[other] { $n } Sekunden
    }
duration-minutes = { $n ->
        [one] 1 Minute
       *[other] { $n } Minuten
    }
duration-hours = { $n ->
        [one] 1 Stunde
       *[other] { $n } Stunden
    }
duration-days = { $n ->
        [one] 1 Tag
       *[other] { $n } Tage
    }

expired-title = Dieser Link ist abgelaufen
expired-body = Dieser Link ist nicht mehr gültig: Er ist abgelaufen oder wurde so oft wie erlaubt verwendet.
expired-next = Wenn Sie die Nachricht noch brauchen, bitten Sie den Absender, sie erneut zu senden.
withdrawn-title = Nachricht zurückgezogen
withdrawn-body = Der Absender hat diese Nachricht zurückgezogen; sie kann nicht mehr gelesen werden.
locked-title = Dieser Link ist gesperrt
locked-body = Es wurde zu oft ein falscher Bestätigungscode eingegeben. Zu Ihrem Schutz ist dieser Link bis { $until } gesperrt.
locked-next = Versuchen Sie es danach erneut. Wenn Sie nicht versucht haben, diese Nachricht zu öffnen, informieren Sie den Absender.
too-many-codes-title = Zu viele Codes angefordert
too-many-codes-body = Für diesen Link wurden so viele Bestätigungscodes gesendet wie erlaubt.
too-many-codes-next = Bitten Sie den Absender, die Nachricht erneut zu senden.
rate-limited-title = Bitte warten Sie einen Moment
rate-limited-body = Für diese Nachricht gab es in kurzer Zeit zu viele Anfragen. Bitte versuchen Sie es in { $wait } erneut.
no-factor-title = Diese Nachricht kann hier nicht geöffnet werden
no-factor-body = Es ist keine Telefonnummer und keine E-Mail-Adresse hinterlegt, an die wir einen Bestätigungscode senden könnten.
no-factor-next = Bitte wenden Sie sich an den Absender.
not-sent-title = Wir konnten Ihren Code nicht senden
not-sent-body = Das Senden Ihres Bestätigungscodes ist fehlgeschlagen. Bitte versuchen Sie es in einer Minute erneut.
try-again = Erneut versuchen
session-ended-title = Ihre Sitzung ist beendet
session-ended-body = Zu Ihrem Schutz wird die Nachricht nach einigen Minuten ohne Aktivität geschlossen, oder wenn Sie sie schließen.
open-again = Mit einem neuen Code erneut öffnen
stale-title = Dieses Formular ist veraltet
stale-body = Die Seite war zu lange geöffnet oder wurde doppelt gesendet.
start-again = Neu beginnen
continue = Weiter
closed-title = Nachricht geschlossen
closed-body = Sie haben die Nachricht geschlossen. Sie können dieses Fenster jetzt schließen.
in-app-title = Öffnen Sie die App
in-app-body = Diese Nachricht wurde an Ihre App zugestellt. Öffnen Sie die App auf Ihrem Telefon, um sie zu lesen; die App zeigt, wie sie geschützt ist.
not-found-title = Seite nicht gefunden
not-found-body = Hier gibt es keine Seite. Bitte verwenden Sie den Link aus Ihrer Benachrichtigung.
not-allowed-title = Nicht verfügbar
not-allowed-body = Diese Seite kann so nicht verwendet werden.
busy-title = Bitte versuchen Sie es erneut
busy-body = Der Dienst ist ausgelastet. Bitte laden Sie diese Seite gleich noch einmal.
failure-title = Etwas ist schiefgelaufen
failure-body = Die Nachricht konnte nicht angezeigt werden. Bitte versuchen Sie es später erneut.

start-title = Ihre sichere Nachricht öffnen
start-from = { $sender } hat Ihnen eine sichere Nachricht gesendet.
start-phone = Zum Öffnen senden wir Ihnen einen 6‑stelligen Bestätigungscode per SMS an Ihr Telefon { $to }.
start-email = Zum Öffnen senden wir Ihnen einen 6‑stelligen Bestätigungscode an Ihre E-Mail-Adresse { $to }.
start-why = Der Code stellt sicher, dass nur Sie die Nachricht lesen können.
send-code = Code senden
start-no-code = Diese Nachricht öffnet sich ohne Bestätigungscode.
open-message = Nachricht öffnen

code-title = Bestätigungscode eingeben
code-sent-phone = Wir haben einen 6‑stelligen Bestätigungscode per SMS an Ihr Telefon { $to } gesendet. Er ist { $valid } gültig.
code-sent-email = Wir haben einen 6‑stelligen Bestätigungscode an Ihre E-Mail-Adresse { $to } gesendet. Er ist { $valid } gültig.
code-wrong = Dieser Code ist nicht korrekt. Sie haben noch { $left ->
        [one] 1 Versuch
       *[other] { $left } Versuche
    }, bevor dieser Link gesperrt wird.
code-expired = Dieser Code ist abgelaufen. Fordern Sie unten einen neuen Code an.
code-label = Bestätigungscode
code-hint = Die 6 Ziffern aus der Nachricht, die wir Ihnen gesendet haben.
no-code = Kein Code erhalten? Sie können einmal pro Minute einen neuen anfordern.
send-new-code = Neuen Code senden

message-title = Sichere Nachricht von { $sender }
security-heading = Schutz
label-none = nicht verschlüsselt
label-none-explain = Sie war möglicherweise für die Netzbetreiber lesbar, die sie übermittelt haben.
label-transport = für Dienstleister lesbar
label-transport-explain = Sie ist bei der Übertragung verschlüsselt, aber der Absender und seine Dienstleister können sie lesen.
label-e2ee = Ende-zu-Ende-verschlüsselt
label-e2ee-explain = Nur die verifizierten Geräte des Empfängers können sie lesen.
label-e2ee-attested = Ende-zu-Ende-verschlüsselt, geprüfte Geräte
from-label = Von
opened-label = Geöffnet
previous-access = Ihr letzter Zugriff: { $at }.
first-access = Dies ist Ihr erster Zugriff auf eine Nachricht hier.
views-left = Dies ist Aufruf { $view } von { $max }; { $left ->
        [one] 1 Aufruf
       *[other] { $left } Aufrufe
    } übrig. Der Link läuft am { $expires } ab.
message-heading = Nachricht
download = Kopie herunterladen
print-hint = Zum Drucken verwenden Sie die Druckfunktion Ihres Browsers.
close-message = Nachricht schließen
close-hint = Schließen Sie die Nachricht, wenn Sie fertig sind – besonders auf einem geteilten Gerät.
