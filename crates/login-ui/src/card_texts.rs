//! The words of the CPS card sign-in, in French (first) and English: the page, what the card
//! agent reports (a wrong PIN, no card), and why a card was refused.

use oidc_core::Locale;

pub struct CardTexts {
    pub method: &'static str,
    pub method_hint: &'static str,
    pub title: &'static str,
    pub lead: &'static str,
    pub pin: &'static str,
    pub pin_hint: &'static str,
    pub sign_in: &'static str,
    pub restart: &'static str,
    pub working: &'static str,
    pub needs_agent: &'static str,
    /// The page the provider shows between the agent's answer and the login (no JavaScript).
    pub relay_title: &'static str,
    pub relay_lead: &'static str,
    pub relay_continue: &'static str,
    pub expired: &'static str,
    pub invalid: &'static str,
    pub tries_left_one: &'static str,
    pub tries_left_many: &'static str,
    /// The card read by the browser itself (the card's TLS listener).
    pub tls_title: &'static str,
    pub tls_lead: &'static str,
    pub tls_button: &'static str,
    pub tls_none: &'static str,
    pub account_blocked: &'static str,
}

const FR: CardTexts = CardTexts {
    method: "Carte CPS",
    method_hint: "Votre carte dans le lecteur et son code porteur",
    title: "Connexion par carte CPS",
    lead: "Insérez votre carte CPS dans le lecteur, puis tapez son code porteur. Le code est vérifié \
           par la carte elle-même, sur cet ordinateur : il n'est jamais envoyé au service.",
    pin: "Code porteur",
    pin_hint: "4 à 8 chiffres",
    sign_in: "Se connecter avec la carte",
    restart: "Recommencer",
    working: "Lecture de la carte en cours…",
    needs_agent: "La connexion par carte passe par l'agent de carte installé sur cet ordinateur.",
    relay_title: "Réponse de la carte reçue",
    relay_lead: "Votre carte a répondu. Continuez pour terminer la connexion.",
    relay_continue: "Continuer",
    expired: "La demande de connexion par carte a expiré. Recommencez.",
    invalid: "La réponse de la carte n'a pas pu être vérifiée. Recommencez.",
    tries_left_one: "Il vous reste 1 essai avant le blocage de la carte.",
    tries_left_many: "essais restants avant le blocage de la carte.",
    tls_title: "Votre navigateur lit la carte ?",
    tls_lead: "Si le logiciel de la carte CPS est installé dans votre navigateur, celui-ci peut présenter \
               le certificat de la carte lui-même : il vous demandera le code porteur.",
    tls_button: "Utiliser la carte lue par le navigateur",
    tls_none: "Le navigateur n'a présenté aucun certificat de carte. Vérifiez que la carte est dans le \
               lecteur et que son logiciel est installé, ou utilisez l'agent de carte.",
    account_blocked: "Le compte lié à cette carte est bloqué. Contactez l'administrateur du service.",
};

const EN: CardTexts = CardTexts {
    method: "CPS card",
    method_hint: "Your card in the reader and its PIN",
    title: "Sign in with your CPS card",
    lead: "Insert your CPS card in the reader, then type its PIN. The card checks the PIN itself, on \
           this computer: it is never sent to the service.",
    pin: "Card PIN",
    pin_hint: "4 to 8 digits",
    sign_in: "Sign in with the card",
    restart: "Start again",
    working: "Reading the card…",
    needs_agent: "Card sign-in goes through the card agent installed on this computer.",
    relay_title: "The card answered",
    relay_lead: "Your card answered. Continue to finish signing in.",
    relay_continue: "Continue",
    expired: "The card sign-in request has expired. Start again.",
    invalid: "The card's answer could not be verified. Start again.",
    tries_left_one: "1 try left before the card is blocked.",
    tries_left_many: "tries left before the card is blocked.",
    tls_title: "Does your browser read the card?",
    tls_lead: "If the CPS card's software is installed in your browser, it can present the card's \
               certificate itself: it will ask for the card's PIN.",
    tls_button: "Use the card read by the browser",
    tls_none: "The browser presented no card certificate. Check that the card is in the reader and \
               that its software is installed, or use the card agent.",
    account_blocked: "The account linked to this card is blocked. Contact the service's administrator.",
};

pub fn card_texts(locale: Locale) -> &'static CardTexts {
    for_lang(locale.as_str())
}

pub fn for_lang(lang: &str) -> &'static CardTexts {
    if lang == "en" { &EN } else { &FR }
}

/// What the card agent reported, as the page says it, with the PIN tries left when known.
pub fn agent_notice(lang: &str, code: &str, tries_left: Option<u8>) -> String {
    let en = lang == "en";
    let text = match (code, en) {
        ("wrong_pin", false) => "Code porteur incorrect.",
        ("wrong_pin", true) => "Wrong PIN.",
        ("card_blocked", false) => {
            "Votre carte est bloquée : trois codes porteur erronés. Débloquez-la avec son code de \
             déblocage, ou choisissez un autre moyen de connexion."
        }
        ("card_blocked", true) => {
            "Your card is blocked after three wrong PINs. Unblock it with its unblocking code, or choose \
             another way to sign in."
        }
        ("no_reader", false) => "Aucun lecteur de carte n'est branché sur cet ordinateur.",
        ("no_reader", true) => "No card reader is connected to this computer.",
        ("no_card", false) => "Aucune carte dans le lecteur. Insérez votre carte CPS.",
        ("no_card", true) => "No card in the reader. Insert your CPS card.",
        ("card_removed", false) => "La carte a été retirée pendant la lecture. Réinsérez-la et recommencez.",
        ("card_removed", true) => "The card was removed while it was read. Insert it again and start again.",
        ("origin_not_allowed" | "challenge_origin_mismatch", false) => {
            "L'agent de carte de cet ordinateur n'accepte pas ce site : il n'est pas dans sa liste de sites \
             autorisés."
        }
        ("origin_not_allowed" | "challenge_origin_mismatch", true) => {
            "This computer's card agent does not accept this site: it is not on its list of allowed sites."
        }
        ("agent_unreachable", false) => {
            "L'agent de carte ne répond pas sur cet ordinateur. Vérifiez qu'il est lancé, puis recommencez."
        }
        ("agent_unreachable", true) => {
            "The card agent does not answer on this computer. Check that it runs, then start again."
        }
        (_, false) => "La carte n'a pas pu répondre. Recommencez.",
        (_, true) => "The card could not answer. Start again.",
    };
    let t = for_lang(lang);
    match tries_left {
        Some(1) if code == "wrong_pin" => format!("{text} {}", t.tries_left_one),
        Some(n) if code == "wrong_pin" => format!("{text} {n} {}", t.tries_left_many),
        _ => text.to_owned(),
    }
}

/// Why the provider refused a card (a [`authn_methods::Failure::Rejected`] code).
pub fn rejected(lang: &str, code: &str) -> &'static str {
    let en = lang == "en";
    match (code, en) {
        ("card_expired", false) => {
            "Le certificat de votre carte a expiré. Utilisez votre nouvelle carte, ou un autre moyen de connexion."
        }
        ("card_expired", true) => "Your card's certificate has expired. Use your new card, or another way to sign in.",
        ("card_not_yet_valid", false) => "Le certificat de votre carte n'est pas encore valide.",
        ("card_not_yet_valid", true) => "Your card's certificate is not valid yet.",
        ("card_untrusted", false) => "Cette carte n'a pas été émise par une autorité reconnue par ce service.",
        ("card_untrusted", true) => "This card was not issued by an authority this service recognises.",
        ("card_revoked", false) => {
            "Cette carte a été révoquée (déclarée perdue, volée ou remplacée). Utilisez votre nouvelle carte, ou \
             un autre moyen de connexion."
        }
        ("card_revoked", true) => {
            "This card has been revoked (reported lost, stolen or replaced). Use your new card, or another way \
             to sign in."
        }
        ("card_revocation_unknown" | "card_revocation_stale", false) => {
            "L'état de révocation de votre carte ne peut pas être vérifié pour le moment. Réessayez plus tard, ou \
             choisissez un autre moyen de connexion."
        }
        ("card_revocation_unknown" | "card_revocation_stale", true) => {
            "Your card's revocation status cannot be checked right now. Try again later, or choose another way \
             to sign in."
        }
        ("card_wrong_usage", false) => "Le certificat présenté ne sert pas à l'authentification.",
        ("card_wrong_usage", true) => "The certificate presented is not for authentication.",
        ("card_policy", false) => "Ce type de carte n'est pas accepté par ce service.",
        ("card_policy", true) => "This kind of card is not accepted by this service.",
        ("card_unknown" | "card_no_identifier", false) => "Cette carte n'est associée à aucun compte de ce service.",
        ("card_unknown" | "card_no_identifier", true) => "This card is linked to no account of this service.",
        (_, false) => "La carte a été refusée.",
        (_, true) => "The card was refused.",
    }
}
