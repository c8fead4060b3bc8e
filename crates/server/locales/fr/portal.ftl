# Le portail destinataire, en français. Texte brut : les pages l'échappent.

service-name = Service de messages sécurisés
secure-connection = Page sécurisée
footer-safety = Cette page ne vous demande jamais de mot de passe, de code PIN ni de données de carte.
footer-contact = En cas de doute, contactez { $sender } à un numéro ou une adresse que vous connaissez déjà.
footer-neutral = En cas de doute, contactez l’expéditeur à un numéro ou une adresse que vous connaissez déjà.

duration-under-a-minute = moins d’une minute
duration-seconds = { $n ->
        [one] 1 seconde
       *[other] { $n } secondes
    }
duration-minutes = { $n ->
        [one] 1 minute
       *[other] { $n } minutes
    }
duration-hours = { $n ->
        [one] 1 heure
       *[other] { $n } heures
    }
duration-days = { $n ->
        [one] 1 jour
       *[other] { $n } jours
    }

expired-title = Ce lien a expiré
expired-body = Ce lien n’est plus valide : il a expiré ou a été utilisé autant de fois que permis.
expired-next = Si vous avez encore besoin du message, demandez à l’expéditeur de le renvoyer.
withdrawn-title = Message retiré
withdrawn-body = L’expéditeur a retiré ce message ; il ne peut plus être lu.
locked-title = Ce lien est bloqué
locked-body = Un code de vérification erroné a été saisi trop de fois : pour votre protection, ce lien est bloqué jusqu’au { $until }.
locked-next = Réessayez après cette heure. Si vous n’avez pas essayé d’ouvrir ce message, prévenez l’expéditeur.
too-many-codes-title = Trop de codes demandés
too-many-codes-body = Le nombre maximal de codes de vérification a été envoyé pour ce lien.
too-many-codes-next = Demandez à l’expéditeur de renvoyer le message.
rate-limited-title = Veuillez patienter un instant
rate-limited-body = Il y a eu trop de demandes pour ce message en peu de temps. Veuillez réessayer dans { $wait }.
no-factor-title = Ce message ne peut pas être ouvert ici
no-factor-body = Aucun numéro de téléphone ni aucune adresse e-mail n’est enregistré pour vous envoyer un code de vérification.
no-factor-next = Veuillez contacter l’expéditeur.
not-sent-title = Nous n’avons pas pu envoyer votre code
not-sent-body = L’envoi de votre code de vérification a échoué. Veuillez réessayer dans une minute.
try-again = Réessayer
session-ended-title = Votre session est terminée
session-ended-body = Pour votre protection, le message se ferme après quelques minutes d’inactivité, ou lorsque vous le fermez.
open-again = L’ouvrir à nouveau avec un nouveau code
stale-title = Ce formulaire n’est plus à jour
stale-body = La page est restée ouverte trop longtemps ou a été envoyée deux fois.
start-again = Recommencer
continue = Continuer
closed-title = Message fermé
closed-body = Vous avez fermé le message. Vous pouvez fermer cette fenêtre.
in-app-title = Ouvrez l’application
in-app-body = Ce message a été remis dans votre application. Ouvrez l’application sur votre téléphone pour le lire ; elle indique comment il est protégé.
not-found-title = Page introuvable
not-found-body = Il n’y a pas de page ici. Veuillez utiliser le lien de votre notification.
not-allowed-title = Non disponible
not-allowed-body = Cette page ne peut pas être utilisée de cette façon.
busy-title = Veuillez réessayer
busy-body = Le service est occupé. Veuillez recharger cette page dans un instant.
failure-title = Une erreur s’est produite
failure-body = Le message n’a pas pu être affiché. Veuillez réessayer plus tard.

start-title = Ouvrir votre message sécurisé
start-from = { $sender } vous a envoyé un message sécurisé.
start-phone = Pour l’ouvrir, nous vous envoyons un code de vérification à 6 chiffres par SMS sur votre téléphone { $to }.
start-email = Pour l’ouvrir, nous vous envoyons un code de vérification à 6 chiffres à votre adresse e-mail { $to }.
start-why = Le code garantit que vous seul pouvez lire le message.
send-code = M’envoyer un code
start-no-code = Ce message s’ouvre sans code de vérification.
open-message = Ouvrir le message

code-title = Saisissez votre code de vérification
code-sent-phone = Nous avons envoyé un code de vérification à 6 chiffres par SMS sur votre téléphone { $to }. Il est valable { $valid }.
code-sent-email = Nous avons envoyé un code de vérification à 6 chiffres à votre adresse e-mail { $to }. Il est valable { $valid }.
code-wrong = Ce code n’est pas correct. Il vous reste { $left ->
        [one] 1 essai
       *[other] { $left } essais
    } avant le blocage de ce lien.
code-expired = Ce code a expiré. Demandez un nouveau code ci-dessous.
code-label = Code de vérification
code-hint = Les 6 chiffres du message que nous vous avons envoyé.
no-code = Pas de code ? Vous pouvez en demander un nouveau une fois par minute.
send-new-code = Envoyer un nouveau code

message-title = Message sécurisé de { $sender }
security-heading = Protection
label-none = non chiffré
label-none-explain = Il a pu être lisible par les opérateurs qui l’ont acheminé.
label-transport = lisible par les prestataires
label-transport-explain = Il est chiffré pendant le transport, mais l’expéditeur et ses prestataires peuvent le lire.
label-e2ee = chiffré de bout en bout
label-e2ee-explain = Seuls les appareils vérifiés du destinataire peuvent le lire.
label-e2ee-attested = chiffré de bout en bout, appareils attestés
from-label = De
opened-label = Ouvert le
previous-access = Votre accès précédent : { $at }.
first-access = C’est votre premier accès à un message ici.
views-left = Ceci est la consultation { $view } sur { $max } ; { $left ->
        [one] 1 consultation restante
       *[other] { $left } consultations restantes
    }. Le lien expire le { $expires }.
message-heading = Message
download = Télécharger une copie
print-hint = Pour imprimer, utilisez la commande d’impression de votre navigateur.
close-message = Fermer le message
close-hint = Fermez le message une fois terminé, surtout sur un appareil partagé.
