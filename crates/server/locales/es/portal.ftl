# El portal del destinatario, en español. Texto plano: las páginas lo escapan.

service-name = Servicio de mensajes seguros
secure-connection = Página segura
footer-safety = Esta página nunca le pide una contraseña, un PIN ni datos de tarjeta.
footer-contact = Si algo le parece extraño, contacte con { $sender } en un número o una dirección que ya conozca.
footer-neutral = Si algo le parece extraño, contacte con el remitente en un número o una dirección que ya conozca.

duration-under-a-minute = menos de un minuto
duration-seconds = { $n ->
        [one] 1 segundo
       *[other] { $n } segundos
    }
duration-minutes = { $n ->
        [one] 1 minuto
       *[other] { $n } minutos
    }
duration-hours = { $n ->
        [one] 1 hora
       *[other] { $n } horas
    }
duration-days = { $n ->
        [one] 1 día
       *[other] { $n } días
    }

expired-title = Este enlace ha caducado
expired-body = Este enlace ya no es válido: ha caducado o se ha usado tantas veces como se permite.
expired-next = Si aún necesita el mensaje, pida al remitente que lo envíe de nuevo.
withdrawn-title = Mensaje retirado
withdrawn-body = El remitente retiró este mensaje y ya no se puede leer.
locked-title = Este enlace está bloqueado
locked-body = Se introdujo un código de verificación incorrecto demasiadas veces, así que este enlace está bloqueado hasta el { $until } para su protección.
locked-next = Vuelva a intentarlo después. Si usted no intentó abrir este mensaje, avise al remitente.
too-many-codes-title = Demasiados códigos solicitados
too-many-codes-body = Ya se han enviado todos los códigos de verificación permitidos para este enlace.
too-many-codes-next = Pida al remitente que envíe el mensaje de nuevo.
rate-limited-title = Espere un momento, por favor
rate-limited-body = Hubo demasiadas solicitudes para este mensaje en poco tiempo. Vuelva a intentarlo en { $wait }.
no-factor-title = Este mensaje no se puede abrir aquí
no-factor-body = No hay ningún número de teléfono ni dirección de correo registrados para enviarle un código de verificación.
no-factor-next = Póngase en contacto con el remitente.
not-sent-title = No pudimos enviar su código
not-sent-body = No se pudo enviar su código de verificación. Vuelva a intentarlo dentro de un minuto.
try-again = Reintentar
session-ended-title = Su sesión ha terminado
session-ended-body = Para su protección, el mensaje se cierra tras unos minutos sin actividad, o cuando usted lo cierra.
open-again = Abrirlo de nuevo con un código nuevo
stale-title = Este formulario está desactualizado
stale-body = La página estuvo abierta demasiado tiempo o se envió dos veces.
start-again = Empezar de nuevo
continue = Continuar
closed-title = Mensaje cerrado
closed-body = Ha cerrado el mensaje. Ya puede cerrar esta ventana.
in-app-title = Abra la aplicación
in-app-body = Este mensaje se entregó en su aplicación. Abra la aplicación en su teléfono para leerlo; la aplicación indica cómo está protegido.
not-found-title = Página no encontrada
not-found-body = Aquí no hay ninguna página. Use el enlace de su aviso.
not-allowed-title = No disponible
not-allowed-body = Esta página no se puede usar de esta manera.
busy-title = Vuelva a intentarlo
busy-body = El servicio está ocupado. Vuelva a cargar esta página en un momento.
failure-title = Algo salió mal
failure-body = No se pudo mostrar el mensaje. Vuelva a intentarlo más tarde.

start-title = Abra su mensaje seguro
start-from = { $sender } le ha enviado un mensaje seguro.
start-phone = Para abrirlo, le enviamos un código de verificación de 6 dígitos por SMS a su teléfono { $to }.
start-email = Para abrirlo, le enviamos un código de verificación de 6 dígitos a su dirección de correo { $to }.
start-why = El código garantiza que solo usted pueda leer el mensaje.
send-code = Enviarme un código
start-no-code = Este mensaje se abre sin código de verificación.
open-message = Abrir el mensaje

code-title = Introduzca su código de verificación
code-sent-phone = Le enviamos un código de verificación de 6 dígitos por SMS a su teléfono { $to }. Es válido durante { $valid }.
code-sent-email = Le enviamos un código de verificación de 6 dígitos a su dirección de correo { $to }. Es válido durante { $valid }.
code-wrong = Ese código no es correcto. Le { $left ->
        [one] queda 1 intento
       *[other] quedan { $left } intentos
    } antes de que este enlace se bloquee.
code-expired = Ese código ha caducado. Solicite un código nuevo abajo.
code-label = Código de verificación
code-hint = Los 6 dígitos del mensaje que le enviamos.
no-code = ¿No recibió el código? Puede pedir uno nuevo una vez por minuto.
send-new-code = Enviar un código nuevo

message-title = Mensaje seguro de { $sender }
security-heading = Protección
label-none = sin cifrar
label-none-explain = Puede haber sido legible para los operadores que lo transportaron.
label-transport = legible por los proveedores
label-transport-explain = Está cifrado durante el transporte, pero el remitente y sus proveedores pueden leerlo.
label-e2ee = cifrado de extremo a extremo
label-e2ee-explain = Solo los dispositivos verificados del destinatario pueden leerlo.
label-e2ee-attested = cifrado de extremo a extremo, dispositivos certificados
from-label = De
opened-label = Abierto
previous-access = Su acceso anterior: { $at }.
first-access = Este es su primer acceso a un mensaje aquí.
views-left = Esta es la vista { $view } de { $max }; { $left ->
        [one] queda 1 vista
       *[other] quedan { $left } vistas
    }. El enlace caduca el { $expires }.
message-heading = Mensaje
download = Descargar una copia
print-hint = Para imprimir, use la función de impresión de su navegador.
close-message = Cerrar el mensaje
close-hint = Cierre el mensaje cuando termine, sobre todo en un dispositivo compartido.
