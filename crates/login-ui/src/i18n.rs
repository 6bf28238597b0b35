//! Every sentence a person reads, in French (first) and English.

use oidc_core::Locale;
use oidc_core::authorize::PageError;
use oidc_core::logout::LogoutError;

/// The words of the pages in one language.
pub struct Texts {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub switch_language: &'static str,
    pub product: &'static str,
    pub login_title: &'static str,
    pub secure_access_to: &'static str,
    pub username: &'static str,
    pub username_hint: &'static str,
    pub password: &'static str,
    pub otp: &'static str,
    pub otp_hint: &'static str,
    pub sign_in: &'static str,
    pub cancel: &'static str,
    pub invalid_credentials: &'static str,
    pub locked_prefix: &'static str,
    pub locked_suffix: &'static str,
    pub unavailable: &'static str,
    pub security_reminder: &'static str,
    pub error_title: &'static str,
    pub error_back: &'static str,
    pub logout_title: &'static str,
    pub logout_question: &'static str,
    pub logout_question_client: &'static str,
    pub logout_yes: &'static str,
    pub logout_no: &'static str,
    pub logged_out: &'static str,
    pub logged_out_services: &'static str,
    pub frontchannel_frame: &'static str,
    pub continue_to_service: &'static str,
    pub still_logged_in: &'static str,
    pub form_errors: &'static str,
    pub send_mail_otp: &'static str,
    pub mail_hint: &'static str,
    pub mail_sent_to: &'static str,
    pub mail_valid_until: &'static str,
    pub mail_date_joiner: &'static str,
    pub mail_retype: &'static str,
    pub mail_no_address: &'static str,
    pub mail_throttled_prefix: &'static str,
    pub mail_throttled_suffix: &'static str,
    pub mail_invalid: &'static str,
    pub send_push: &'static str,
    pub push_hint: &'static str,
    pub push_title: &'static str,
    pub push_type_number: &'static str,
    pub push_valid_until: &'static str,
    pub push_waiting: &'static str,
    pub push_silenced: &'static str,
    pub push_check: &'static str,
    pub push_no_device: &'static str,
    pub push_blocked: &'static str,
    pub push_throttled_prefix: &'static str,
    pub push_throttled_suffix: &'static str,
    pub push_invalid: &'static str,
    pub push_denied: &'static str,
    pub push_expired: &'static str,
    pub choose_method: &'static str,
    pub last_used: &'static str,
    pub other_method: &'static str,
    pub next_title: &'static str,
    pub next_lead: &'static str,
    pub code_hint: &'static str,
    pub method_otp: &'static str,
    pub method_otp_hint: &'static str,
    pub method_mail: &'static str,
    pub method_mail_hint: &'static str,
    pub method_push: &'static str,
    pub method_push_hint: &'static str,
    pub method_other: &'static str,
    pub step_raced: &'static str,
    pub step_expired: &'static str,
    pub method_unavailable: &'static str,
    pub method_qr: &'static str,
    pub method_qr_hint: &'static str,
    pub qr_title: &'static str,
    pub qr_lead: &'static str,
    pub qr_image: &'static str,
    pub qr_valid_until: &'static str,
    pub qr_time_left: &'static str,
    pub qr_open_app: &'static str,
    pub qr_offline_hint: &'static str,
    pub qr_offline_link: &'static str,
    pub qr_offline_title: &'static str,
    pub qr_offline_lead: &'static str,
    pub qr_id: &'static str,
    pub qr_id_hint: &'static str,
    pub qr_code: &'static str,
    pub qr_code_hint: &'static str,
    pub qr_check: &'static str,
    pub qr_new: &'static str,
    pub qr_expired: &'static str,
    pub qr_invalid: &'static str,
    pub qr_back_to_code: &'static str,
}

pub static FR: Texts = Texts {
    lang: "fr",
    other_lang: "en",
    other_lang_name: "English",
    switch_language: "Read this page in English",
    product: "Caducée",
    login_title: "Connexion",
    secure_access_to: "Accès sécurisé au service\u{a0}:",
    username: "Identifiant",
    username_hint: "Votre identifiant national de professionnel de santé, par exemple 899700000001.",
    password: "Mot de passe",
    otp: "Code OTP",
    otp_hint: "Le code à 6 chiffres de votre application (FreeOTP, Google Authenticator) ou de votre boîtier OTP.",
    sign_in: "Se connecter",
    cancel: "Annuler",
    invalid_credentials: "Identifiant, mot de passe ou code OTP incorrect. Vérifiez votre saisie et réessayez.",
    locked_prefix: "Trop de tentatives échouées. Pour votre sécurité, la connexion est bloquée pendant encore",
    locked_suffix: "minute(s). Réessayez plus tard ou contactez l'assistance.",
    unavailable: "Le service d'authentification est momentanément indisponible. Réessayez dans quelques instants.",
    security_reminder: "Pour des raisons de sécurité, déconnectez-vous et fermez votre navigateur lorsque vous avez fini d'accéder aux services protégés.",
    error_title: "Une erreur est survenue",
    error_back: "Retournez sur le service que vous vouliez utiliser et recommencez la connexion.",
    logout_title: "Déconnexion",
    logout_question: "Voulez-vous vous déconnecter de Caducée ?",
    logout_question_client: "Le service suivant demande votre déconnexion de Caducée :",
    logout_yes: "Me déconnecter",
    logout_no: "Rester connecté",
    logged_out: "Vous êtes déconnecté. Vous pouvez fermer votre navigateur.",
    logged_out_services: "Vous êtes déconnecté. Les services où vous étiez connecté sont prévenus.",
    frontchannel_frame: "Déconnexion d'un service",
    continue_to_service: "Revenir au service",
    still_logged_in: "Vous êtes toujours connecté.",
    form_errors: "Le formulaire contient une erreur\u{a0}:",
    send_mail_otp: "Envoyer OTP par courriel",
    mail_hint: "Saisissez votre identifiant et votre mot de passe, puis choisissez « Envoyer OTP par courriel » : le code arrive à l'adresse de votre compte.",
    mail_sent_to: "Le courriel est parti : un code à usage unique a été envoyé à",
    mail_valid_until: "Il est valable jusqu'à",
    mail_date_joiner: "le",
    mail_retype: "Saisissez le code reçu dans la case « Code OTP ».",
    mail_no_address: "Aucune adresse de courriel n'est enregistrée pour votre compte : utilisez votre application ou votre boîtier OTP, ou contactez l'assistance.",
    mail_throttled_prefix: "Un code vous a déjà été envoyé récemment. Patientez",
    mail_throttled_suffix: "seconde(s) avant d'en demander un nouveau, et vérifiez vos courriels indésirables.",
    mail_invalid: "Identifiant ou mot de passe incorrect : aucun code n'a été envoyé.",
    send_push: "Valider sur mon téléphone",
    push_hint: "Saisissez votre identifiant et votre mot de passe, puis choisissez « Valider sur mon téléphone » : votre téléphone vous demandera d'approuver.",
    push_title: "Validez sur votre téléphone",
    push_type_number: "Ouvrez l'application Caducée sur votre téléphone et saisissez-y ce nombre pour approuver la connexion :",
    push_valid_until: "La demande est valable jusqu'à",
    push_silenced: "Après plusieurs demandes refusées ou restées sans réponse, votre téléphone n'est plus averti pendant une heure : ouvrez l'application Caducée pour voir cette demande.",
    push_waiting: "Dès que vous avez validé, choisissez « J'ai validé sur mon téléphone » (la page le fait d'elle-même si votre navigateur exécute JavaScript). Si vous n'êtes pas à l'origine de cette connexion, répondez « Ce n'était pas moi » sur le téléphone.",
    push_check: "J'ai validé sur mon téléphone",
    push_no_device: "Aucun téléphone d'approbation n'est associé à votre compte : utilisez un code OTP, ou ajoutez un téléphone depuis votre portefeuille.",
    push_blocked: "Les notifications d'approbation sont bloquées pour votre compte : utilisez un code OTP. Vous pouvez les débloquer depuis votre portefeuille.",
    push_throttled_prefix: "Trop de demandes d'approbation ont été envoyées. Patientez",
    push_throttled_suffix: "seconde(s), ou utilisez un code OTP.",
    push_invalid: "Identifiant ou mot de passe incorrect : aucune demande n'a été envoyée.",
    push_denied: "La connexion a été refusée sur le téléphone.",
    push_expired: "La demande d'approbation a expiré sans réponse. Recommencez.",
    choose_method: "Choisissez votre moyen de connexion",
    last_used: "(utilisé la dernière fois)",
    other_method: "Choisir un autre moyen de connexion",
    next_title: "Deuxième étape",
    next_lead: "Votre mot de passe est vérifié. Choisissez comment confirmer votre identité :",
    code_hint: "Le code à usage unique reçu par courriel, ou celui de votre application ou de votre boîtier OTP.",
    method_otp: "Code OTP",
    method_otp_hint: "Application (FreeOTP, Google Authenticator), boîtier OTP ou code d'activation",
    method_mail: "Code par courriel",
    method_mail_hint: "Un code à usage unique envoyé à l'adresse de votre compte",
    method_push: "Validation sur téléphone",
    method_push_hint: "L'application Caducée vous demande d'approuver la connexion",
    method_other: "Autre moyen",
    step_raced: "Cette étape a déjà été traitée dans un autre onglet ou une autre fenêtre. Reprenez ici.",
    step_expired: "La demande a expiré. Recommencez.",
    method_unavailable: "Ce moyen de connexion n'est pas disponible à cette étape. Choisissez-en un autre.",
    method_qr: "QR code",
    method_qr_hint: "Scannez un code avec l'application Caducée de votre téléphone, même hors réseau",
    qr_title: "Scannez le QR code",
    qr_lead: "Ouvrez l'application Caducée sur votre téléphone, scannez ce code avant qu'il n'expire, puis saisissez le code PIN de l'application. La page continue d'elle-même.",
    qr_image: "QR code de connexion, à scanner avec l'application Caducée",
    qr_valid_until: "Ce code est valable jusqu'à",
    qr_time_left: "Temps restant :",
    qr_open_app: "Ce téléphone affiche la page ? Ouvrir dans l'application Caducée",
    qr_offline_hint: "Téléphone hors réseau ? L'application affiche un identifiant (ID) et un mot de passe : cliquez sur le QR code pour les saisir.",
    qr_offline_link: "Saisir l'identifiant et le mot de passe de l'application",
    qr_offline_title: "Connexion hors réseau",
    qr_offline_lead: "Saisissez l'identifiant (ID) et le mot de passe que l'application Caducée affiche pour ce QR code.",
    qr_id: "Identifiant (ID)",
    qr_id_hint: "Les 10 chiffres affichés par l'application.",
    qr_code: "Mot de passe",
    qr_code_hint: "Les 8 chiffres affichés par l'application, valables pour ce QR code seulement.",
    qr_check: "J'ai validé dans l'application",
    qr_new: "Afficher un nouveau QR code",
    qr_expired: "Le QR code a expiré sans être validé. Affichez-en un nouveau.",
    qr_invalid: "Identifiant ou mot de passe de l'application incorrect. Vérifiez votre saisie et réessayez.",
    qr_back_to_code: "Revenir au QR code",
};

pub static EN: Texts = Texts {
    lang: "en",
    other_lang: "fr",
    other_lang_name: "Français",
    switch_language: "Lire cette page en français",
    product: "Caducée",
    login_title: "Sign in",
    secure_access_to: "Secure access to:",
    username: "Identifier",
    username_hint: "Your national health professional identifier, for example 899700000001.",
    password: "Password",
    otp: "OTP code",
    otp_hint: "The 6-digit code from your app (FreeOTP, Google Authenticator) or your OTP token.",
    sign_in: "Sign in",
    cancel: "Cancel",
    invalid_credentials: "Incorrect identifier, password or OTP code. Check what you typed and try again.",
    locked_prefix: "Too many failed attempts. For your security, sign-in is blocked for another",
    locked_suffix: "minute(s). Try again later or contact support.",
    unavailable: "The sign-in service is temporarily unavailable. Please try again in a few moments.",
    security_reminder: "For your security, sign out and close your browser when you have finished using protected services.",
    error_title: "Something went wrong",
    error_back: "Go back to the service you wanted to use and start signing in again.",
    logout_title: "Sign out",
    logout_question: "Do you want to sign out of Caducée?",
    logout_question_client: "The following service asks you to sign out of Caducée:",
    logout_yes: "Sign me out",
    logout_no: "Stay signed in",
    logged_out: "You are signed out. You may close your browser.",
    logged_out_services: "You are signed out. The services you were signed in to are being told.",
    frontchannel_frame: "Signing out of a service",
    continue_to_service: "Back to the service",
    still_logged_in: "You are still signed in.",
    form_errors: "The form contains an error:",
    send_mail_otp: "Send OTP by e-mail",
    mail_hint: "Type your identifier and password, then choose “Send OTP by e-mail”: the code goes to your account's address.",
    mail_sent_to: "The e-mail has left: a one-time code was sent to",
    mail_valid_until: "It is valid until",
    mail_date_joiner: "on",
    mail_retype: "Type the code you received in the “OTP code” field.",
    mail_no_address: "No e-mail address is registered for your account: use your app or OTP token, or contact support.",
    mail_throttled_prefix: "A code was already sent recently. Wait",
    mail_throttled_suffix: "second(s) before asking for a new one, and check your spam folder.",
    mail_invalid: "Incorrect identifier or password: no code was sent.",
    send_push: "Approve on my phone",
    push_hint: "Type your identifier and password, then choose “Approve on my phone”: your phone will ask you to approve.",
    push_title: "Approve on your phone",
    push_type_number: "Open the Caducée app on your phone and type this number there to approve the sign-in:",
    push_valid_until: "The request is valid until",
    push_silenced: "After several requests refused or left unanswered, your phone is not alerted for an hour: open the Caducée app to see this request.",
    push_waiting: "Once you have approved, choose “I approved on my phone” (the page does it by itself if your browser runs JavaScript). If you did not start this sign-in, answer “This was not me” on the phone.",
    push_check: "I approved on my phone",
    push_no_device: "No approval phone is linked to your account: use an OTP code, or add a phone from your wallet.",
    push_blocked: "Approval notifications are blocked for your account: use an OTP code. You can unblock them from your wallet.",
    push_throttled_prefix: "Too many approval requests were sent. Wait",
    push_throttled_suffix: "second(s), or use an OTP code.",
    push_invalid: "Incorrect identifier or password: no request was sent.",
    push_denied: "The sign-in was refused on the phone.",
    push_expired: "The approval request expired without an answer. Start again.",
    choose_method: "Choose how to sign in",
    last_used: "(used last time)",
    other_method: "Choose another way to sign in",
    next_title: "Second step",
    next_lead: "Your password is checked. Choose how to confirm your identity:",
    code_hint: "The one-time code received by e-mail, or the one from your app or OTP token.",
    method_otp: "OTP code",
    method_otp_hint: "App (FreeOTP, Google Authenticator), OTP token or activation code",
    method_mail: "Code by e-mail",
    method_mail_hint: "A one-time code sent to your account's address",
    method_push: "Approval on the phone",
    method_push_hint: "The Caducée app asks you to approve the sign-in",
    method_other: "Another way",
    step_raced: "This step was already handled in another tab or window. Carry on here.",
    step_expired: "The request expired. Start again.",
    method_unavailable: "This way to sign in is not available at this step. Choose another.",
    method_qr: "QR code",
    method_qr_hint: "Scan a code with the Caducée app on your phone, even without network",
    qr_title: "Scan the QR code",
    qr_lead: "Open the Caducée app on your phone, scan this code before it expires, then type the app's PIN. The page moves on by itself.",
    qr_image: "Sign-in QR code, to scan with the Caducée app",
    qr_valid_until: "This code is valid until",
    qr_time_left: "Time left:",
    qr_open_app: "Is this page on your phone? Open in the Caducée app",
    qr_offline_hint: "Phone without network? The app shows an identifier (ID) and a password: click the QR code to type them.",
    qr_offline_link: "Type the app's identifier and password",
    qr_offline_title: "Sign in without network",
    qr_offline_lead: "Type the identifier (ID) and password the Caducée app shows for this QR code.",
    qr_id: "Identifier (ID)",
    qr_id_hint: "The 10 digits the app shows.",
    qr_code: "Password",
    qr_code_hint: "The 8 digits the app shows, valid for this QR code only.",
    qr_check: "I approved in the app",
    qr_new: "Show a new QR code",
    qr_expired: "The QR code expired before it was approved. Show a new one.",
    qr_invalid: "Incorrect app identifier or password. Check what you typed and try again.",
    qr_back_to_code: "Back to the QR code",
};

pub fn texts(locale: Locale) -> &'static Texts {
    match locale {
        Locale::Fr => &FR,
        Locale::En => &EN,
    }
}

pub fn page_error(locale: Locale, error: PageError) -> &'static str {
    let fr = locale == Locale::Fr;
    match error {
        PageError::UnknownClient => {
            if fr {
                "Le service qui vous a envoyé ici n'est pas connu de Caducée."
            } else {
                "The service that sent you here is not known to Caducée."
            }
        }
        PageError::MissingRedirectUri | PageError::UnregisteredRedirectUri => {
            if fr {
                "L'adresse de retour demandée par le service n'est pas enregistrée : la connexion est refusée."
            } else {
                "The return address requested by the service is not registered: sign-in is refused."
            }
        }
        PageError::MalformedRequest => {
            if fr {
                "La demande de connexion est mal formée."
            } else {
                "The sign-in request is malformed."
            }
        }
        PageError::InteractionExpired => {
            if fr {
                "Cette page de connexion a expiré ou a déjà été utilisée."
            } else {
                "This sign-in page has expired or was already used."
            }
        }
        PageError::Forbidden => {
            if fr {
                "Le formulaire n'a pas pu être vérifié (il provient peut-être d'un autre onglet ou navigateur). Recommencez la connexion."
            } else {
                "The form could not be verified (it may come from another tab or browser). Start signing in again."
            }
        }
        PageError::Unavailable => texts(locale).unavailable,
        PageError::TooManyRequests => {
            if fr {
                "Trop de demandes de connexion depuis ce navigateur ou cette adresse. Réessayez dans quelques minutes."
            } else {
                "Too many sign-in requests from this browser or address. Please try again in a few minutes."
            }
        }
        PageError::Internal => {
            if fr {
                "Une erreur interne est survenue."
            } else {
                "An internal error occurred."
            }
        }
    }
}

pub fn logout_error(locale: Locale, error: LogoutError) -> &'static str {
    let fr = locale == Locale::Fr;
    match error {
        LogoutError::InvalidIdTokenHint => {
            if fr {
                "La demande de déconnexion porte un jeton invalide."
            } else {
                "The sign-out request carries an invalid token."
            }
        }
        LogoutError::ClientMismatch => {
            if fr {
                "La demande de déconnexion est incohérente (service différent du jeton)."
            } else {
                "The sign-out request is inconsistent (service differs from the token)."
            }
        }
        LogoutError::UnregisteredRedirectUri | LogoutError::RedirectWithoutClient => {
            if fr {
                "L'adresse de retour après déconnexion n'est pas enregistrée pour ce service."
            } else {
                "The post-sign-out address is not registered for this service."
            }
        }
        LogoutError::Expired => {
            if fr {
                "Cette demande de déconnexion a expiré ou a déjà été traitée."
            } else {
                "This sign-out request has expired or was already handled."
            }
        }
        LogoutError::Unavailable => texts(locale).unavailable,
    }
}
